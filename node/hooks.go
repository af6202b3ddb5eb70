package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runHook runs a postStart or preStop handler (exec, httpGet, sleep) as
// kubelet's lifecycle handler runner, and returns the message kubelet
// records in the FailedPostStartHook/FailedPreStopHook event on failure.
// A preStop hook is bounded by ctx (the grace period).
func (w *podWorker) runHook(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, inst *instance, h *corev1.LifecycleHandler, kind string, _ time.Duration) (string, error) {
	switch {
	case h.Exec != nil:
		out, code, err := w.execInContainer(ctx, pod, inst, h.Exec.Command)
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out)
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, spec.Name, formatPod(pod), err, string(out)), err
		}
		return "", nil
	case h.HTTPGet != nil:
		if err := w.runHTTPHook(ctx, pod, spec, h.HTTPGet); err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, spec.Name, formatPod(pod), err), err
		}
		return "", nil
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return "", nil
		case <-ctx.Done():
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.Sleep.Seconds, spec.Name, formatPod(pod), err), err
		}
	case h.TCPSocket != nil:
		// Deprecated and never run by kubelet ("TCPSocket is NOT supported
		// as a LifecycleHandler").
		return "", nil
	}
	err := fmt.Errorf("invalid handler: %v", h)
	return fmt.Sprintf("%s hook for Container %q in Pod %q failed - error: %v", kind, spec.Name, formatPod(pod), err), err
}

// runHTTPHook sends the hook's GET; the host defaults to the pod's IP, the
// port may be a name of one of the container's ports; HTTPS is not
// verified.
func (w *podWorker) runHTTPHook(ctx context.Context, pod *corev1.Pod, spec *corev1.Container, g *corev1.HTTPGetAction) error {
	host := g.Host
	if host == "" {
		w.mu.Lock()
		if len(w.net.IPs) > 0 {
			host = w.net.IPs[0].String()
		}
		w.mu.Unlock()
	}
	if host == "" {
		return errors.New("the pod has no IP")
	}
	port, err := hookPort(g.Port, spec)
	if err != nil {
		return err
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	if p, err := url.Parse(path); err == nil {
		u.Path, u.RawQuery = p.Path, p.RawQuery
	} else {
		u.Path = path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-lifecycle/"+KubeletVersion)
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // kubelet does not verify lifecycle hooks
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	// As kubelet's discardHTTPRespBody: the status does not matter, only
	// that the request was answered.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return nil
}

func hookPort(p intstr.IntOrString, spec *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port number: %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	for _, cp := range spec.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("couldn't find port: %v in %v", p.StrVal, spec.Name)
}
