package node

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/switchboard-dev/switchboard/cluster"
)

// Environment variables the node adds to every container, beside the ones
// Kubernetes defines. They come first, so a container's own env may
// override them.
const (
	EnvPodIP        = "SWITCHBOARD_POD_IP"        // the pod's primary IP (status.podIP)
	EnvPodName      = "SWITCHBOARD_POD_NAME"      // metadata.name
	EnvPodNamespace = "SWITCHBOARD_POD_NAMESPACE" // metadata.namespace
	EnvNodeName     = "SWITCHBOARD_NODE_NAME"     // spec.nodeName
)

// expand replaces $(VAR) references in s as Kubernetes does
// (third_party/forked/golang/expansion): "$(VAR)" becomes the value of
// VAR when mapping knows it and stays "$(VAR)" literally when not; "$$"
// is an escaped "$", so "$$(VAR)" becomes "$(VAR)"; a "$" not followed by
// "(" or "$", and an unterminated "$(", are kept as they are.
func expand(s string, mapping func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := mapping(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// mappingFor looks a name up in each map in turn, as expansion.MappingFuncFor.
func mappingFor(maps ...map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, m := range maps {
			if v, ok := m[name]; ok {
				return v, true
			}
		}
		return "", false
	}
}

// envVar is one variable of a container's environment.
type envVar struct{ Name, Value string }

// envList keeps variables in the order they were first set; a later Set of
// the same name replaces the value in place.
type envList struct {
	vars  []envVar
	index map[string]int
}

func (l *envList) Set(name, value string) {
	if l.index == nil {
		l.index = map[string]int{}
	}
	if i, ok := l.index[name]; ok {
		l.vars[i].Value = value
		return
	}
	l.index[name] = len(l.vars)
	l.vars = append(l.vars, envVar{name, value})
}

func (l *envList) Has(name string) bool { _, ok := l.index[name]; return ok }

func (l *envList) Map() map[string]string {
	m := make(map[string]string, len(l.vars))
	for _, v := range l.vars {
		m[v.Name] = v.Value
	}
	return m
}

func (l *envList) Strings() []string {
	out := make([]string, len(l.vars))
	for i, v := range l.vars {
		out[i] = v.Name + "=" + v.Value
	}
	return out
}

// podNetInfo is what the downward API needs of the pod's sandbox.
type podNetInfo struct {
	PodIPs  []netip.Addr
	HostIPs []netip.Addr
}

func (p podNetInfo) podIP() string {
	if len(p.PodIPs) == 0 {
		return ""
	}
	return p.PodIPs[0].String()
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// configError is an error building a container's configuration (a missing
// ConfigMap, a bad fieldRef): kubelet's CreateContainerConfigError, whose
// message is the error's text.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// makeEnvironment builds a container's environment as kubelet's
// makeEnvironmentVariables, on top of what a container runtime gives every
// process:
//
//  1. PATH and HOME from the host, HOSTNAME the pod's hostname, and the
//     SWITCHBOARD_* variables;
//  2. "Env will override EnvFrom variables. Process EnvFrom first then
//     allow Env to replace existing values.";
//  3. each env entry in order: a value has its $(VAR) references expanded
//     against the variables declared so far and the service variables, a
//     valueFrom is resolved (fieldRef, resourceFieldRef, configMapKeyRef,
//     secretKeyRef);
//  4. "Append remaining service env vars" (those not declared).
//
// The second result is the mapping for $(VAR) in command and args (the
// variables of steps 2 to 4 and SWITCHBOARD_*). A missing non-optional
// ConfigMap, Secret or key is a *configError with upstream's message.
func (n *Node) makeEnvironment(pod *corev1.Pod, c *corev1.Container, net podNetInfo) (*envList, map[string]string, error) {
	s := n.cfg.Store
	var env envList
	if p, ok := os.LookupEnv("PATH"); ok {
		env.Set("PATH", p)
	} else {
		env.Set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if h, ok := os.LookupEnv("HOME"); ok {
		env.Set("HOME", h)
	}
	env.Set("HOSTNAME", podHostname(pod))
	own := map[string]string{
		EnvPodIP:        net.podIP(),
		EnvPodName:      pod.Name,
		EnvPodNamespace: pod.Namespace,
		EnvNodeName:     pod.Spec.NodeName,
	}
	for _, k := range []string{EnvPodIP, EnvPodName, EnvPodNamespace, EnvNodeName} {
		env.Set(k, own[k])
	}

	serviceEnv := n.serviceEnv(pod)

	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	getConfigMap := func(name string) (*corev1.ConfigMap, error) {
		if cm, ok := configMaps[name]; ok {
			return cm, nil
		}
		cm, err := cluster.Get[*corev1.ConfigMap](s, pod.Namespace, name)
		if err != nil {
			return nil, err
		}
		configMaps[name] = cm
		return cm, nil
	}
	getSecret := func(name string) (*corev1.Secret, error) {
		if sec, ok := secrets[name]; ok {
			return sec, nil
		}
		sec, err := cluster.Get[*corev1.Secret](s, pod.Namespace, name)
		if err != nil {
			return nil, err
		}
		secrets[name] = sec
		return sec, nil
	}

	var tmp envList
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			optional := ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
			cm, err := getConfigMap(ef.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, nil, &configError{msg: err.Error()}
			}
			for _, k := range sortedKeys(cm.Data) {
				if validEnvName(ef.Prefix + k) {
					tmp.Set(ef.Prefix+k, cm.Data[k])
				}
			}
		case ef.SecretRef != nil:
			optional := ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
			sec, err := getSecret(ef.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, nil, &configError{msg: err.Error()}
			}
			for _, k := range sortedKeys(sec.Data) {
				if validEnvName(ef.Prefix + k) {
					tmp.Set(ef.Prefix+k, string(sec.Data[k]))
				}
			}
			for _, k := range sortedKeys(sec.StringData) { // not merged into data by an API server here
				if validEnvName(ef.Prefix+k) && !tmp.Has(ef.Prefix+k) {
					tmp.Set(ef.Prefix+k, sec.StringData[k])
				}
			}
		}
	}

	for i := range c.Env {
		ev := &c.Env[i]
		val := ev.Value
		if val != "" {
			val = expand(val, mappingFor(tmp.Map(), serviceEnv))
		} else if ev.ValueFrom != nil {
			vf := ev.ValueFrom
			var err error
			switch {
			case vf.FieldRef != nil:
				val, err = podFieldValue(vf.FieldRef, pod, net)
				if err != nil {
					return nil, nil, &configError{msg: err.Error()}
				}
			case vf.ResourceFieldRef != nil:
				val, err = n.resourceFieldValue(vf.ResourceFieldRef, pod, c)
				if err != nil {
					return nil, nil, &configError{msg: err.Error()}
				}
			case vf.ConfigMapKeyRef != nil:
				ref := vf.ConfigMapKeyRef
				optional := ref.Optional != nil && *ref.Optional
				cm, err := getConfigMap(ref.Name)
				if err != nil {
					if apierrors.IsNotFound(err) && optional {
						continue
					}
					return nil, nil, &configError{msg: err.Error()}
				}
				v, ok := cm.Data[ref.Key]
				if !ok {
					if optional {
						continue
					}
					return nil, nil, configErrorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, pod.Namespace, ref.Name)
				}
				val = v
			case vf.SecretKeyRef != nil:
				ref := vf.SecretKeyRef
				optional := ref.Optional != nil && *ref.Optional
				sec, err := getSecret(ref.Name)
				if err != nil {
					if apierrors.IsNotFound(err) && optional {
						continue
					}
					return nil, nil, &configError{msg: err.Error()}
				}
				v, ok := sec.Data[ref.Key]
				if !ok {
					if sv, sok := sec.StringData[ref.Key]; sok {
						v, ok = []byte(sv), true
					}
				}
				if !ok {
					if optional {
						continue
					}
					return nil, nil, configErrorf("couldn't find key %v in Secret %v/%v", ref.Key, pod.Namespace, ref.Name)
				}
				val = string(v)
			case vf.FileKeyRef != nil:
				return nil, nil, configErrorf("env %s: fileKeyRef is not supported by this node", ev.Name)
			}
		}
		tmp.Set(ev.Name, val)
	}

	for _, v := range tmp.vars {
		env.Set(v.Name, v.Value)
	}
	for _, k := range sortedKeys(serviceEnv) {
		if !tmp.Has(k) {
			env.Set(k, serviceEnv[k])
		}
	}
	// The mapping for command and args: what kubelet hands the runtime
	// (opts.Envs), plus our own variables.
	cmdMap := tmp.Map()
	for k, v := range serviceEnv {
		if _, ok := cmdMap[k]; !ok {
			cmdMap[k] = v
		}
	}
	for k, v := range own {
		if _, ok := cmdMap[k]; !ok {
			cmdMap[k] = v
		}
	}
	return &env, cmdMap, nil
}

// validEnvName: since Kubernetes 1.30 any printable ASCII but "=" is a
// valid name (RelaxedEnvironmentVariableValidation); a name holding "="
// or nothing cannot be passed to a process and is skipped.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 32 || name[i] > 126 || name[i] == '=' {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// podHostname is the pod's hostname as kubelet's GeneratePodHostNameAndDomain:
// spec.hostname, else the pod's name truncated to 63 characters without a
// trailing '-' or '.'.
func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	h := pod.Name
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// masterServices always get variables, from the default namespace, even
// with enableServiceLinks false.
var masterServices = map[string]bool{"kubernetes": true}

// serviceEnv is kubelet's getServiceEnvVarMap: the variables of the
// services a pod should see, "the master services from the default
// namespace, even if enableServiceLinks is false", and "other services in
// the same namespace, if enableServiceLinks is true"; services whose
// ClusterIP is "None" or empty are ignored.
func (n *Node) serviceEnv(pod *corev1.Pod) map[string]string {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	chosen := map[string]*corev1.Service{}
	consider := func(svc *corev1.Service) {
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
			return
		}
		if svc.Namespace == "default" && masterServices[svc.Name] {
			if _, ok := chosen[svc.Name]; !ok {
				chosen[svc.Name] = svc
			}
		} else if svc.Namespace == pod.Namespace && links {
			chosen[svc.Name] = svc
		}
	}
	for _, svc := range cluster.List[*corev1.Service](n.cfg.Store, pod.Namespace, nil) {
		consider(svc)
	}
	if pod.Namespace != "default" {
		if svc, err := cluster.Get[*corev1.Service](n.cfg.Store, "default", "kubernetes"); err == nil {
			consider(svc)
		}
	}
	m := map[string]string{}
	for _, name := range sortedKeys(chosen) {
		for _, e := range envFromService(chosen[name]) {
			m[e.Name] = e.Value
		}
	}
	return m
}

// envFromService is kubelet's envvars.FromServices for one service:
// <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT (first port),
// <NAME>_SERVICE_PORT_<PORTNAME> for named ports, and the Docker link
// variables <NAME>_PORT, <NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR].
func envFromService(svc *corev1.Service) []envVar {
	prefix := envVarName(svc.Name)
	ip := svc.Spec.ClusterIP
	out := []envVar{
		{prefix + "_SERVICE_HOST", ip},
		{prefix + "_SERVICE_PORT", strconv.Itoa(int(svc.Spec.Ports[0].Port))},
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Name != "" {
			out = append(out, envVar{prefix + "_SERVICE_PORT_" + envVarName(sp.Name), strconv.Itoa(int(sp.Port))})
		}
	}
	for i, sp := range svc.Spec.Ports {
		proto := string(corev1.ProtocolTCP)
		if sp.Protocol != "" {
			proto = string(sp.Protocol)
		}
		url := fmt.Sprintf("%s://%s:%d", strings.ToLower(proto), ip, sp.Port)
		if i == 0 {
			out = append(out, envVar{prefix + "_PORT", url}) // "Docker special-cases the first port."
		}
		pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, sp.Port, strings.ToUpper(proto))
		out = append(out,
			envVar{pp, url},
			envVar{pp + "_PROTO", strings.ToLower(proto)},
			envVar{pp + "_PORT", strconv.Itoa(int(sp.Port))},
			envVar{pp + "_ADDR", ip},
		)
	}
	return out
}

// envVarName is envvars.makeEnvVariableName: upper case, "." and "-"
// become "_", a leading digit gets a "_" before it.
func envVarName(s string) string {
	v := strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(s))
	if v != "" && v[0] >= '0' && v[0] <= '9' {
		v = "_" + v
	}
	return v
}

// podFieldValue resolves a fieldRef as kubelet's podFieldSelectorRuntimeValue
// and fieldpath.ExtractFieldPathAsString, for the fields the downward API
// supports in env (apiVersion v1).
func podFieldValue(fs *corev1.ObjectFieldSelector, pod *corev1.Pod, net podNetInfo) (string, error) {
	if fs.APIVersion != "" && fs.APIVersion != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", fs.APIVersion)
	}
	path := fs.FieldPath
	if key, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "spec.schedulerName":
		return pod.Spec.SchedulerName, nil
	case "spec.restartPolicy":
		return string(pod.Spec.RestartPolicy), nil
	case "spec.terminationGracePeriodSeconds":
		if pod.Spec.TerminationGracePeriodSeconds == nil {
			return "30", nil
		}
		return strconv.FormatInt(*pod.Spec.TerminationGracePeriodSeconds, 10), nil
	case "status.hostIP":
		if len(net.HostIPs) == 0 {
			return "", nil
		}
		return net.HostIPs[0].String(), nil
	case "status.hostIPs":
		return joinAddrs(net.HostIPs), nil
	case "status.podIP":
		return net.podIP(), nil
	case "status.podIPs":
		return joinAddrs(net.PodIPs), nil
	case "status.phase":
		return string(pod.Status.Phase), nil
	}
	return "", fmt.Errorf("field label not supported: %s", path)
}

// subscript parses "prefix['key']".
func subscript(path, prefix string) (string, bool) {
	if !strings.HasPrefix(path, prefix+"['") || !strings.HasSuffix(path, "']") {
		return "", false
	}
	return path[len(prefix)+2 : len(path)-2], true
}

// formatMap is fieldpath.FormatMap: sorted key="value" lines, values
// quoted with %q.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "%v=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// resourceFieldValue resolves a resourceFieldRef as kubelet's
// containerResourceRuntimeValue; a limit that is not set defaults to the
// node's allocatable (kubelet's defaultPodLimitsForDownwardAPI).
func (n *Node) resourceFieldValue(fs *corev1.ResourceFieldSelector, pod *corev1.Pod, c *corev1.Container) (string, error) {
	target := c
	if fs.ContainerName != "" {
		target = nil
		for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range list {
				if list[i].Name == fs.ContainerName {
					target = &list[i]
				}
			}
		}
		if target == nil {
			return "", fmt.Errorf("container %s not found", fs.ContainerName)
		}
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	limit := func(name corev1.ResourceName) resource.Quantity {
		if q, ok := target.Resources.Limits[name]; ok {
			return q
		}
		return n.allocatable()[name]
	}
	request := func(name corev1.ResourceName) resource.Quantity {
		return target.Resources.Requests[name]
	}
	cpu := func(q resource.Quantity) string {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10)
	}
	amount := func(q resource.Quantity) string {
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10)
	}
	switch fs.Resource {
	case "limits.cpu":
		return cpu(limit(corev1.ResourceCPU)), nil
	case "limits.memory":
		return amount(limit(corev1.ResourceMemory)), nil
	case "limits.ephemeral-storage":
		return amount(limit(corev1.ResourceEphemeralStorage)), nil
	case "requests.cpu":
		return cpu(request(corev1.ResourceCPU)), nil
	case "requests.memory":
		return amount(request(corev1.ResourceMemory)), nil
	case "requests.ephemeral-storage":
		return amount(request(corev1.ResourceEphemeralStorage)), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "limits."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		return amount(target.Resources.Limits[corev1.ResourceName(name)]), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "requests."); ok && strings.HasPrefix(name, corev1.ResourceHugePagesPrefix) {
		return amount(target.Resources.Requests[corev1.ResourceName(name)]), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
}

// allocatable is what the node offers: all CPUs, all memory, 500 pods.
func (n *Node) allocatable() corev1.ResourceList {
	n.allocOnce.Do(func() {
		n.alloc = corev1.ResourceList{
			corev1.ResourcePods: *resource.NewQuantity(500, resource.DecimalSI),
			corev1.ResourceCPU:  *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		}
		if mem := memTotal(); mem > 0 {
			n.alloc[corev1.ResourceMemory] = *resource.NewQuantity(mem, resource.BinarySI)
		}
	})
	return n.alloc
}

// memTotal reads MemTotal from /proc/meminfo, in bytes (0 if unknown).
func memTotal() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
