package admission

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CommandRequiredMessage is the reason given when a container has no
// command.
const CommandRequiredMessage = "Switchboard runs each container's `command` (with `args`) as a local process " +
	"and does not pull images, so an image's entrypoint is unknown: set `command`"

func validatePod(p, old *corev1.Pod) field.ErrorList {
	errs := validateMeta(p, apivalidation.NameIsDNSSubdomain)
	errs = append(errs, validatePodSpec(&p.Spec, field.NewPath("spec"))...)
	if old != nil {
		errs = append(errs, validatePodUpdate(p, old)...)
	}
	return errs
}

var (
	supportedRestartPolicies = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	supportedDNSPolicies     = []corev1.DNSPolicy{corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone}
	supportedPullPolicies    = []corev1.PullPolicy{corev1.PullAlways, corev1.PullNever, corev1.PullIfNotPresent}
	supportedTermMsgPolicies = []corev1.TerminationMessagePolicy{corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError}
	supportedURISchemes      = []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}
	supportedTolerationOps   = []corev1.TolerationOperator{corev1.TolerationOpEqual, corev1.TolerationOpExists}
	supportedTaintEffects    = []corev1.TaintEffect{corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute}
)

// validPodFieldPaths are the fieldRef paths the downward API offers to
// environment variables (validEnvDownwardAPIFieldPathExpressions).
var validPodFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid",
	"spec.nodeName", "spec.serviceAccountName",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

// validatePodSpec is ValidatePodSpec for what a pod or a template holds.
func validatePodSpec(s *corev1.PodSpec, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	volumes, vErrs := validateVolumes(s.Volumes, fld.Child("volumes"))
	errs = append(errs, vErrs...)

	names := map[string]bool{}
	for i := range s.InitContainers {
		errs = append(errs, validateContainer(&s.InitContainers[i], s, true, names, volumes, fld.Child("initContainers").Index(i))...)
	}
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(fld.Child("containers"), ""))
	}
	for i := range s.Containers {
		errs = append(errs, validateContainer(&s.Containers[i], s, false, names, volumes, fld.Child("containers").Index(i))...)
	}

	if s.RestartPolicy == "" {
		errs = append(errs, field.Required(fld.Child("restartPolicy"), ""))
	} else if !slices.Contains(supportedRestartPolicies, s.RestartPolicy) {
		errs = append(errs, field.NotSupported(fld.Child("restartPolicy"), s.RestartPolicy, supportedRestartPolicies))
	}
	if s.DNSPolicy != "" && !slices.Contains(supportedDNSPolicies, s.DNSPolicy) {
		errs = append(errs, field.NotSupported(fld.Child("dnsPolicy"), s.DNSPolicy, supportedDNSPolicies))
	}
	if s.DNSPolicy == corev1.DNSNone && (s.DNSConfig == nil || len(s.DNSConfig.Nameservers) == 0) {
		errs = append(errs, field.Required(fld.Child("dnsConfig", "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
	}
	if s.DNSConfig != nil {
		for i, ns := range s.DNSConfig.Nameservers {
			errs = append(errs, validateIP(ns, fld.Child("dnsConfig", "nameservers").Index(i))...)
		}
		for i, d := range s.DNSConfig.Searches {
			errs = append(errs, validateDNS1123Subdomain(strings.TrimSuffix(d, "."), fld.Child("dnsConfig", "searches").Index(i))...)
		}
	}
	if s.Hostname != "" {
		errs = append(errs, validateDNS1123Label(s.Hostname, fld.Child("hostname"))...)
	}
	if s.Subdomain != "" {
		errs = append(errs, validateDNS1123Label(s.Subdomain, fld.Child("subdomain"))...)
	}
	if s.ServiceAccountName != "" {
		for _, msg := range apivalidation.ValidateServiceAccountName(s.ServiceAccountName, false) {
			errs = append(errs, field.Invalid(fld.Child("serviceAccountName"), s.ServiceAccountName, msg))
		}
	}
	if s.NodeName != "" {
		errs = append(errs, validateDNS1123Subdomain(s.NodeName, fld.Child("nodeName"))...)
	}
	if s.ActiveDeadlineSeconds != nil && (*s.ActiveDeadlineSeconds < 1 || *s.ActiveDeadlineSeconds > math.MaxInt32) {
		errs = append(errs, field.Invalid(fld.Child("activeDeadlineSeconds"), *s.ActiveDeadlineSeconds, validation.InclusiveRangeError(1, math.MaxInt32)))
	}
	if s.TerminationGracePeriodSeconds != nil {
		errs = append(errs, validateNonnegative(*s.TerminationGracePeriodSeconds, fld.Child("terminationGracePeriodSeconds"))...)
	}
	errs = append(errs, metav1validation.ValidateLabels(s.NodeSelector, fld.Child("nodeSelector"))...)
	for i, t := range s.Tolerations {
		tp := fld.Child("tolerations").Index(i)
		if t.Key != "" {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, tp.Child("key"))...)
		}
		if t.Operator != "" && !slices.Contains(supportedTolerationOps, t.Operator) {
			errs = append(errs, field.NotSupported(tp.Child("operator"), t.Operator, supportedTolerationOps))
		}
		if t.Operator == corev1.TolerationOpExists && t.Value != "" {
			errs = append(errs, field.Invalid(tp.Child("operator"), t.Value, "value must be empty when `operator` is 'Exists'"))
		}
		if t.Effect != "" && !slices.Contains(supportedTaintEffects, t.Effect) {
			errs = append(errs, field.NotSupported(tp.Child("effect"), t.Effect, supportedTaintEffects))
		}
	}
	for i, ha := range s.HostAliases {
		hp := fld.Child("hostAliases").Index(i)
		errs = append(errs, validateIP(ha.IP, hp.Child("ip"))...)
		for j, h := range ha.Hostnames {
			errs = append(errs, validateDNS1123Subdomain(h, hp.Child("hostnames").Index(j))...)
		}
	}
	return errs
}

// validateVolumes checks names (DNS-1123 labels, unique) and that each
// volume has exactly one source; it returns the set of names.
func validateVolumes(vols []corev1.Volume, fld *field.Path) (map[string]bool, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range vols {
		v := &vols[i]
		vp := fld.Index(i)
		if v.Name == "" {
			errs = append(errs, field.Required(vp.Child("name"), ""))
		} else {
			errs = append(errs, validateDNS1123Label(v.Name, vp.Child("name"))...)
			if names[v.Name] {
				errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
			}
			names[v.Name] = true
		}
		n := 0
		src := reflect.ValueOf(v.VolumeSource)
		for j := 0; j < src.NumField(); j++ {
			f := src.Field(j)
			if f.Kind() == reflect.Pointer && !f.IsNil() {
				n++
				if n > 1 {
					errs = append(errs, field.Forbidden(vp.Child(jsonName(src.Type().Field(j))), "may not specify more than 1 volume type"))
				}
			}
		}
		if n == 0 {
			errs = append(errs, field.Required(vp, "must specify a volume type"))
		}
		if v.ConfigMap != nil && v.ConfigMap.Name == "" {
			errs = append(errs, field.Required(vp.Child("configMap", "name"), ""))
		}
		if v.Secret != nil && v.Secret.SecretName == "" {
			errs = append(errs, field.Required(vp.Child("secret", "secretName"), ""))
		}
	}
	return names, errs
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func validateContainer(c *corev1.Container, spec *corev1.PodSpec, isInit bool, names map[string]bool, volumes map[string]bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(fld.Child("name"), ""))
	} else {
		errs = append(errs, validateDNS1123Label(c.Name, fld.Child("name"))...)
		if names[c.Name] {
			errs = append(errs, field.Duplicate(fld.Child("name"), c.Name))
		}
		names[c.Name] = true
	}
	if len(c.Command) == 0 {
		errs = append(errs, field.Required(fld.Child("command"), CommandRequiredMessage))
	}
	if strings.TrimSpace(c.Image) != c.Image {
		errs = append(errs, field.Invalid(fld.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	if c.ImagePullPolicy != "" && !slices.Contains(supportedPullPolicies, c.ImagePullPolicy) {
		errs = append(errs, field.NotSupported(fld.Child("imagePullPolicy"), c.ImagePullPolicy, supportedPullPolicies))
	}
	if c.TerminationMessagePolicy != "" && !slices.Contains(supportedTermMsgPolicies, c.TerminationMessagePolicy) {
		errs = append(errs, field.NotSupported(fld.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, supportedTermMsgPolicies))
	}

	// Init containers may set restartPolicy Always (sidecars); regular
	// containers may not set it at all.
	sidecar := false
	if c.RestartPolicy != nil {
		if isInit {
			if *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				errs = append(errs, field.NotSupported(fld.Child("restartPolicy"), *c.RestartPolicy, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
			}
			sidecar = *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		} else {
			errs = append(errs, field.Forbidden(fld.Child("restartPolicy"), "may not be set for non-init containers"))
		}
	}

	errs = append(errs, validateContainerPorts(c.Ports, fld.Child("ports"))...)
	errs = append(errs, validateEnv(c.Env, fld.Child("env"))...)
	errs = append(errs, validateEnvFrom(c.EnvFrom, fld.Child("envFrom"))...)
	errs = append(errs, validateVolumeMounts(c.VolumeMounts, volumes, fld.Child("volumeMounts"))...)
	errs = append(errs, validateResources(&c.Resources, fld.Child("resources"))...)

	probes := []struct {
		p    *corev1.Probe
		name string
	}{{c.LivenessProbe, "livenessProbe"}, {c.ReadinessProbe, "readinessProbe"}, {c.StartupProbe, "startupProbe"}}
	for _, pr := range probes {
		if pr.p == nil {
			continue
		}
		pp := fld.Child(pr.name)
		if isInit && !sidecar {
			errs = append(errs, field.Forbidden(pp, "may not be set for init containers without restartPolicy=Always"))
			continue
		}
		errs = append(errs, validateProbe(pr.p, pr.name, pp)...)
	}
	if c.Lifecycle != nil {
		lp := fld.Child("lifecycle")
		if isInit && !sidecar {
			errs = append(errs, field.Forbidden(lp, "may not be set for init containers without restartPolicy=Always"))
		} else {
			if c.Lifecycle.PostStart != nil {
				errs = append(errs, validateLifecycleHandler(c.Lifecycle.PostStart, spec.TerminationGracePeriodSeconds, lp.Child("postStart"))...)
			}
			if c.Lifecycle.PreStop != nil {
				errs = append(errs, validateLifecycleHandler(c.Lifecycle.PreStop, spec.TerminationGracePeriodSeconds, lp.Child("preStop"))...)
			}
		}
	}
	return errs
}

func validateContainerPorts(ports []corev1.ContainerPort, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, p := range ports {
		pp := fld.Index(i)
		if p.Name != "" {
			if msgs := validation.IsValidPortName(p.Name); len(msgs) != 0 {
				for _, msg := range msgs {
					errs = append(errs, field.Invalid(pp.Child("name"), p.Name, msg))
				}
			} else if names[p.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
			} else {
				names[p.Name] = true
			}
		}
		if p.ContainerPort == 0 {
			errs = append(errs, field.Required(pp.Child("containerPort"), ""))
		} else {
			errs = append(errs, validatePortNum(p.ContainerPort, pp.Child("containerPort"))...)
		}
		if p.HostPort != 0 {
			errs = append(errs, validatePortNum(p.HostPort, pp.Child("hostPort"))...)
		}
		if p.HostIP != "" {
			errs = append(errs, validateIP(p.HostIP, pp.Child("hostIP"))...)
		}
		errs = append(errs, validateProtocol(p.Protocol, pp.Child("protocol"))...)
	}
	return errs
}

var fieldPathSubscript = regexp.MustCompile(`^metadata\.(labels|annotations)\['([^']+)'\]$`)

func validateEnv(env []corev1.EnvVar, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		ep := fld.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(ep.Child("name"), ""))
		} else {
			for _, msg := range validation.IsRelaxedEnvVarName(ev.Name) {
				errs = append(errs, field.Invalid(ep.Child("name"), ev.Name, msg))
			}
		}
		if ev.ValueFrom == nil {
			continue
		}
		vp := ep.Child("valueFrom")
		if ev.Value != "" {
			errs = append(errs, field.Invalid(vp, "", "may not be specified when `value` is not empty"))
		}
		n := 0
		vf := ev.ValueFrom
		if vf.FieldRef != nil {
			n++
			errs = append(errs, validateFieldRef(vf.FieldRef, vp.Child("fieldRef"))...)
		}
		if vf.ResourceFieldRef != nil {
			n++
			if vf.ResourceFieldRef.Resource == "" {
				errs = append(errs, field.Required(vp.Child("resourceFieldRef", "resource"), ""))
			}
		}
		if vf.ConfigMapKeyRef != nil {
			n++
			errs = append(errs, validateKeyRef(vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key, vp.Child("configMapKeyRef"))...)
		}
		if vf.SecretKeyRef != nil {
			n++
			errs = append(errs, validateKeyRef(vf.SecretKeyRef.Name, vf.SecretKeyRef.Key, vp.Child("secretKeyRef"))...)
		}
		if vf.FileKeyRef != nil {
			n++
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(vp, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func validateFieldRef(f *corev1.ObjectFieldSelector, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if f.APIVersion == "" {
		errs = append(errs, field.Required(fld.Child("apiVersion"), ""))
	} else if f.APIVersion != "v1" {
		errs = append(errs, field.Invalid(fld.Child("apiVersion"), f.APIVersion, "unsupported version"))
	}
	switch {
	case f.FieldPath == "":
		errs = append(errs, field.Required(fld.Child("fieldPath"), ""))
	case slices.Contains(validPodFieldPaths, f.FieldPath):
	case fieldPathSubscript.MatchString(f.FieldPath):
		key := fieldPathSubscript.FindStringSubmatch(f.FieldPath)[2]
		for _, msg := range validation.IsQualifiedName(strings.ToLower(key)) {
			errs = append(errs, field.Invalid(fld.Child("fieldPath"), f.FieldPath, msg))
		}
	default:
		errs = append(errs, field.NotSupported(fld.Child("fieldPath"), f.FieldPath,
			append(slices.Clone(validPodFieldPaths), "metadata.labels['<KEY>']", "metadata.annotations['<KEY>']")))
	}
	return errs
}

func validateKeyRef(name, key string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(fld.Child("name"), ""))
	} else {
		errs = append(errs, validateDNS1123Subdomain(name, fld.Child("name"))...)
	}
	if key == "" {
		errs = append(errs, field.Required(fld.Child("key"), ""))
	} else {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(fld.Child("key"), key, msg))
		}
	}
	return errs
}

func validateEnvFrom(from []corev1.EnvFromSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ef := range from {
		ep := fld.Index(i)
		if ef.Prefix != "" {
			for _, msg := range validation.IsRelaxedEnvVarName(ef.Prefix) {
				errs = append(errs, field.Invalid(ep.Child("prefix"), ef.Prefix, msg))
			}
		}
		n := 0
		if ef.ConfigMapRef != nil {
			n++
			if ef.ConfigMapRef.Name == "" {
				errs = append(errs, field.Required(ep.Child("configMapRef", "name"), ""))
			} else {
				errs = append(errs, validateDNS1123Subdomain(ef.ConfigMapRef.Name, ep.Child("configMapRef", "name"))...)
			}
		}
		if ef.SecretRef != nil {
			n++
			if ef.SecretRef.Name == "" {
				errs = append(errs, field.Required(ep.Child("secretRef", "name"), ""))
			} else {
				errs = append(errs, validateDNS1123Subdomain(ef.SecretRef.Name, ep.Child("secretRef", "name"))...)
			}
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(ep, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(ep, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func validateVolumeMounts(mounts []corev1.VolumeMount, volumes map[string]bool, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := fld.Index(i)
		if m.Name == "" {
			errs = append(errs, field.Required(mp.Child("name"), ""))
		} else if !volumes[m.Name] {
			errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			errs = append(errs, field.Required(mp.Child("mountPath"), ""))
		} else if paths[m.MountPath] {
			errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
		}
		paths[m.MountPath] = true
	}
	return errs
}

func validateResources(r *corev1.ResourceRequirements, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for name, q := range r.Limits {
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(fld.Child("limits").Key(string(name)), q.String(), apivalidation.IsNegativeErrorMsg))
		}
	}
	for name, q := range r.Requests {
		rp := fld.Child("requests").Key(string(name))
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(rp, q.String(), apivalidation.IsNegativeErrorMsg))
		}
		if lim, ok := r.Limits[name]; ok && q.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(rp, q.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	return errs
}

// validateProbe is validateProbe plus the liveness/startup rule
// "successThreshold: must be 1".
func validateProbe(p *corev1.Probe, kind string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateProbeHandler(&p.ProbeHandler, fld)...)
	errs = append(errs, validateNonnegative(int64(p.InitialDelaySeconds), fld.Child("initialDelaySeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.TimeoutSeconds), fld.Child("timeoutSeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.PeriodSeconds), fld.Child("periodSeconds"))...)
	errs = append(errs, validateNonnegative(int64(p.SuccessThreshold), fld.Child("successThreshold"))...)
	errs = append(errs, validateNonnegative(int64(p.FailureThreshold), fld.Child("failureThreshold"))...)
	if (kind == "livenessProbe" || kind == "startupProbe") && p.SuccessThreshold != 1 {
		errs = append(errs, field.Invalid(fld.Child("successThreshold"), p.SuccessThreshold, "must be 1"))
	}
	if p.TerminationGracePeriodSeconds != nil {
		if kind == "readinessProbe" {
			errs = append(errs, field.Invalid(fld.Child("terminationGracePeriodSeconds"), *p.TerminationGracePeriodSeconds, "must not be set for readinessProbes"))
		} else if *p.TerminationGracePeriodSeconds <= 0 {
			errs = append(errs, field.Invalid(fld.Child("terminationGracePeriodSeconds"), *p.TerminationGracePeriodSeconds, "must be greater than 0"))
		}
	}
	return errs
}

// validateProbeHandler is validateHandler for probes: exactly one of
// exec, httpGet, tcpSocket, grpc.
func validateProbeHandler(h *corev1.ProbeHandler, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	more := func(name string) bool {
		if n > 0 {
			errs = append(errs, field.Forbidden(fld.Child(name), "may not specify more than 1 handler type"))
			return true
		}
		n++
		return false
	}
	if h.Exec != nil && !more("exec") {
		errs = append(errs, validateExec(h.Exec, fld.Child("exec"))...)
	}
	if h.HTTPGet != nil && !more("httpGet") {
		errs = append(errs, validateHTTPGet(h.HTTPGet, fld.Child("httpGet"))...)
	}
	if h.TCPSocket != nil && !more("tcpSocket") {
		errs = append(errs, validatePortNumOrName(h.TCPSocket.Port, fld.Child("tcpSocket", "port"))...)
	}
	if h.GRPC != nil && !more("grpc") {
		errs = append(errs, validatePortNum(h.GRPC.Port, fld.Child("grpc", "port"))...)
	}
	if n == 0 {
		errs = append(errs, field.Required(fld, "must specify a handler type"))
	}
	return errs
}

// validateLifecycleHandler is validateHandler for postStart/preStop:
// exactly one of exec, httpGet, tcpSocket, sleep.
func validateLifecycleHandler(h *corev1.LifecycleHandler, grace *int64, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	more := func(name string) bool {
		if n > 0 {
			errs = append(errs, field.Forbidden(fld.Child(name), "may not specify more than 1 handler type"))
			return true
		}
		n++
		return false
	}
	if h.Exec != nil && !more("exec") {
		errs = append(errs, validateExec(h.Exec, fld.Child("exec"))...)
	}
	if h.HTTPGet != nil && !more("httpGet") {
		errs = append(errs, validateHTTPGet(h.HTTPGet, fld.Child("httpGet"))...)
	}
	if h.TCPSocket != nil && !more("tcpSocket") {
		errs = append(errs, validatePortNumOrName(h.TCPSocket.Port, fld.Child("tcpSocket", "port"))...)
	}
	if h.Sleep != nil && !more("sleep") {
		sp := fld.Child("sleep", "seconds")
		if h.Sleep.Seconds < 0 {
			errs = append(errs, field.Invalid(sp, h.Sleep.Seconds, apivalidation.IsNegativeErrorMsg))
		} else if grace != nil && h.Sleep.Seconds > *grace {
			errs = append(errs, field.Invalid(sp, h.Sleep.Seconds, fmt.Sprintf("must be less than terminationGracePeriodSeconds (%d)", *grace)))
		}
	}
	if n == 0 {
		errs = append(errs, field.Required(fld, "must specify a handler type"))
	}
	return errs
}

func validateExec(e *corev1.ExecAction, fld *field.Path) field.ErrorList {
	if len(e.Command) == 0 {
		return field.ErrorList{field.Required(fld.Child("command"), "")}
	}
	return nil
}

func validateHTTPGet(h *corev1.HTTPGetAction, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if h.Path == "" {
		errs = append(errs, field.Required(fld.Child("path"), ""))
	}
	errs = append(errs, validatePortNumOrName(h.Port, fld.Child("port"))...)
	if h.Scheme != "" && !slices.Contains(supportedURISchemes, h.Scheme) {
		errs = append(errs, field.NotSupported(fld.Child("scheme"), h.Scheme, supportedURISchemes))
	}
	for i, hd := range h.HTTPHeaders {
		for _, msg := range validation.IsHTTPHeaderName(hd.Name) {
			errs = append(errs, field.Invalid(fld.Child("httpHeaders").Index(i).Child("name"), hd.Name, msg))
		}
	}
	return errs
}

// updatablePodSpecFields is what ValidatePodUpdate lets change.
var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// validatePodUpdate is ValidatePodUpdate's spec rule: "pod updates may not
// change fields other than" the images, activeDeadlineSeconds and added
// tolerations. Binding (setting spec.nodeName on an unbound pod, which the
// API server does through pods/binding) and removing scheduling gates are
// allowed too. Metadata and status writes are not restricted.
func validatePodUpdate(p, old *corev1.Pod) field.ErrorList {
	m := p.Spec.DeepCopy()
	for i := range m.Containers {
		if i < len(old.Spec.Containers) {
			m.Containers[i].Image = old.Spec.Containers[i].Image
		}
	}
	for i := range m.InitContainers {
		if i < len(old.Spec.InitContainers) {
			m.InitContainers[i].Image = old.Spec.InitContainers[i].Image
		}
	}
	var errs field.ErrorList
	if m.ActiveDeadlineSeconds != nil {
		if old.Spec.ActiveDeadlineSeconds == nil || *m.ActiveDeadlineSeconds <= *old.Spec.ActiveDeadlineSeconds {
			m.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
		} else {
			errs = append(errs, field.Invalid(field.NewPath("spec", "activeDeadlineSeconds"), *m.ActiveDeadlineSeconds, "must be less than or equal to previous value"))
			m.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
		}
	}
	added := true
	for _, t := range old.Spec.Tolerations {
		if !slices.ContainsFunc(m.Tolerations, func(n corev1.Toleration) bool { return apiequality.Semantic.DeepEqual(n, t) }) {
			added = false
			break
		}
	}
	if added {
		m.Tolerations = old.Spec.Tolerations
	}
	if old.Spec.NodeName == "" {
		m.NodeName = ""
	}
	if isSubset(m.SchedulingGates, old.Spec.SchedulingGates) {
		m.SchedulingGates = old.Spec.SchedulingGates
	}
	if old.Spec.TerminationGracePeriodSeconds != nil && *old.Spec.TerminationGracePeriodSeconds < 0 &&
		m.TerminationGracePeriodSeconds != nil && *m.TerminationGracePeriodSeconds == 1 {
		m.TerminationGracePeriodSeconds = old.Spec.TerminationGracePeriodSeconds
	}
	if apiequality.Semantic.DeepEqual(*m, old.Spec) {
		return errs
	}
	changed := firstDifference(&old.Spec, m, "spec")
	msg := "pod updates may not change fields other than " + strings.Join(updatablePodSpecFields, ",")
	if changed != "" {
		msg += "; changed: " + changed
	}
	return append(errs, field.Forbidden(field.NewPath("spec"), msg))
}

func isSubset(a, b []corev1.PodSchedulingGate) bool {
	for _, g := range a {
		if !slices.Contains(b, g) {
			return false
		}
	}
	return true
}

// firstDifference names the first field (as a field path under prefix)
// whose value differs between a and b, comparing their JSON forms.
func firstDifference(a, b any, prefix string) string {
	ua, err1 := runtime.DefaultUnstructuredConverter.ToUnstructured(a)
	ub, err2 := runtime.DefaultUnstructuredConverter.ToUnstructured(b)
	if err1 != nil || err2 != nil {
		return ""
	}
	return diffPath(ua, ub, prefix)
}

func diffPath(a, b any, path string) string {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return path
		}
		keys := make([]string, 0, len(av)+len(bv))
		for k := range av {
			keys = append(keys, k)
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if p := diffPath(av[k], bv[k], path+"."+k); p != "" {
				return p
			}
		}
		return ""
	case []any:
		bv, ok := b.([]any)
		if !ok {
			return path
		}
		for i := 0; i < len(av) && i < len(bv); i++ {
			if p := diffPath(av[i], bv[i], fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
		if len(av) != len(bv) {
			return path
		}
		return ""
	default:
		if reflect.DeepEqual(a, b) {
			return ""
		}
		return path
	}
}
