package probe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// maxProbeRetries is how often kubelet retries an attempt whose handler
// returned an error (not a failure) before giving up on this tick.
const maxProbeRetries = 3

// runProbe is Run: one attempt with kubelet's retries on handler errors,
// folded into a Result and a message.
func runProbe(ctx context.Context, p *corev1.Probe, t Target) (Result, string) {
	if p == nil {
		// kubelet: "Probe is nil" is a success (there is nothing to probe).
		return Success, ""
	}
	o, out, err := attemptWithRetries(ctx, p, t, nil)
	if err != nil {
		return Failure, err.Error()
	}
	switch o {
	case outcomeSuccess, outcomeWarning:
		return Success, out
	}
	return Failure, out
}

// attemptWithRetries runs up to maxProbeRetries attempts while the handler
// reports an error, as kubelet's runProbeWithRetries. hc, when not nil,
// keeps the httpGet request from one attempt to the next (a worker's).
func attemptWithRetries(ctx context.Context, p *corev1.Probe, t Target, hc *httpCache) (o outcome, out string, err error) {
	for i := 0; i < maxProbeRetries; i++ {
		o, out, err = attempt(ctx, p, t, hc)
		if err == nil || ctx.Err() != nil {
			return o, out, err
		}
	}
	return o, out, err
}

// attempt runs one handler of p against t, as kubelet's prober.runProbe.
// A handler that cannot run (unresolvable port, no exec support, a panic
// in Target.Exec) returns outcomeUnknown and an error.
func attempt(ctx context.Context, p *corev1.Probe, t Target, hc *httpCache) (o outcome, out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			o, out, err = outcomeUnknown, "", fmt.Errorf("probe handler panicked: %v", r)
		}
	}()
	timeout := probeTimeout(p)
	switch {
	case p.Exec != nil:
		var env []corev1.EnvVar
		if t.Container != nil {
			env = t.Container.Env
		}
		return execProbe(ctx, t, expandCommandStatic(p.Exec.Command, env), timeout)
	case p.HTTPGet != nil:
		r, err := hc.request(p.HTTPGet, t.Container, t.IP)
		if err != nil {
			return outcomeUnknown, "", err
		}
		return httpProbe(ctx, r, timeout)
	case p.TCPSocket != nil:
		port, err := resolveContainerPort(p.TCPSocket.Port, t.Container)
		if err != nil {
			return outcomeUnknown, "", err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = t.IP
		}
		return tcpProbe(ctx, host, port, timeout)
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return grpcProbe(ctx, t.IP, service, int(p.GRPC.Port), timeout)
	}
	name := ""
	if t.Container != nil {
		name = t.Container.Name
	}
	return outcomeUnknown, "", fmt.Errorf("missing probe handler for %s:%s", podDesc(t.Pod), name)
}

// probeTimeout is timeoutSeconds, with the API default of 1 second when
// the probe was not defaulted.
func probeTimeout(p *corev1.Probe) time.Duration {
	if p.TimeoutSeconds <= 0 {
		return time.Second
	}
	return time.Duration(p.TimeoutSeconds) * time.Second
}

// resolveContainerPort is kubelet's probe.ResolveContainerPort: a number,
// or the name of one of the container's ports, or (last ditch) a number
// written as a string; 1..65535.
func resolveContainerPort(param intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	var err error
	switch param.Type {
	case intstr.Int:
		port = param.IntValue()
	case intstr.String:
		if port, err = findPortByName(c, param.StrVal); err != nil {
			// Last ditch effort - maybe it was an int stored as string?
			if port, err = strconv.Atoi(param.StrVal); err != nil {
				return port, err
			}
		}
	default:
		return port, fmt.Errorf("intOrString had no kind: %+v", param)
	}
	if port > 0 && port < 65536 {
		return port, nil
	}
	return port, fmt.Errorf("invalid port number: %v", port)
}

func findPortByName(c *corev1.Container, name string) (int, error) {
	if c != nil {
		for _, p := range c.Ports {
			if p.Name == name {
				return int(p.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("port %s not found", name)
}

// expandCommandStatic expands $(VAR) in an exec probe's command with the
// container's literal env values only, as kubelet's
// ExpandContainerCommandOnlyStatic: "exec probe does NOT have access to pod
// environment variables or downward API". Per the API reference,
// "Variable references $(VAR_NAME) are expanded using the container's
// environment. If a variable cannot be resolved, the reference in the
// input string will be unchanged. Double $$ are reduced to a single $".
func expandCommandStatic(cmd []string, env []corev1.EnvVar) []string {
	vars := make(map[string]string, len(env))
	for _, e := range env {
		if e.ValueFrom == nil {
			vars[e.Name] = e.Value
		}
	}
	out := make([]string, len(cmd))
	for i, s := range cmd {
		out[i] = expandVars(s, vars)
	}
	return out
}

func expandVars(in string, vars map[string]string) string {
	if !strings.Contains(in, "$") {
		return in
	}
	var b strings.Builder
	checkpoint := 0
	for cur := 0; cur < len(in); cur++ {
		if in[cur] != '$' || cur+1 >= len(in) {
			continue
		}
		b.WriteString(in[checkpoint:cur])
		rest := in[cur+1:]
		advance := 1
		switch rest[0] {
		case '$': // escaped operator
			b.WriteByte('$')
		case '(':
			end := strings.IndexByte(rest, ')')
			if end < 0 { // incomplete reference: keep it
				b.WriteString("$(")
				break
			}
			name := rest[1:end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			advance = end + 1
		default: // a lone operator
			b.WriteByte('$')
			b.WriteByte(rest[0])
		}
		cur += advance
		checkpoint = cur + 1
	}
	return b.String() + in[checkpoint:]
}

// isDeadline reports whether err is a deadline.
func isDeadline(err error) bool { return errors.Is(err, context.DeadlineExceeded) }
