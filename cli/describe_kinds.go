package cli

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/yaml"
)

// The describers re-create kubectl's pkg/describe/describe.go layout for
// the kinds a node runs.

func describePod(pod *corev1.Pod, events []corev1.Event, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", pod.Name)
	w.Write(level0, "Namespace:\t%s\n", pod.Namespace)
	if pod.Spec.Priority != nil {
		w.Write(level0, "Priority:\t%d\n", *pod.Spec.Priority)
	}
	if pod.Spec.PriorityClassName != "" {
		w.Write(level0, "Priority Class Name:\t%s\n", pod.Spec.PriorityClassName)
	}
	if pod.Spec.ServiceAccountName != "" {
		w.Write(level0, "Service Account:\t%s\n", pod.Spec.ServiceAccountName)
	}
	if pod.Spec.NodeName == "" {
		w.Write(level0, "Node:\t<none>\n")
	} else {
		w.Write(level0, "Node:\t%s\n", pod.Spec.NodeName+"/"+pod.Status.HostIP)
	}
	if pod.Status.StartTime != nil {
		w.Write(level0, "Start Time:\t%s\n", pod.Status.StartTime.Time.Format(time.RFC1123Z))
	}
	printLabelsMultiline(w, "Labels", pod.Labels)
	printAnnotationsMultiline(w, "Annotations", pod.Annotations)
	if pod.DeletionTimestamp != nil && pod.Status.Phase != corev1.PodFailed && pod.Status.Phase != corev1.PodSucceeded {
		w.Write(level0, "Status:\tTerminating (lasts %s)\n", translateTimestampSince(*pod.DeletionTimestamp, w.now))
		if pod.DeletionGracePeriodSeconds != nil {
			w.Write(level0, "Termination Grace Period:\t%ds\n", *pod.DeletionGracePeriodSeconds)
		}
	} else {
		w.Write(level0, "Status:\t%s\n", string(pod.Status.Phase))
	}
	if pod.Status.Reason != "" {
		w.Write(level0, "Reason:\t%s\n", pod.Status.Reason)
	}
	if pod.Status.Message != "" {
		w.Write(level0, "Message:\t%s\n", pod.Status.Message)
	}
	w.Write(level0, "IP:\t%s\n", pod.Status.PodIP)
	if len(pod.Status.PodIPs) == 0 {
		w.Write(level0, "IPs:\t<none>\n")
	} else {
		w.Write(level0, "IPs:\n")
		for _, ip := range pod.Status.PodIPs {
			w.Write(level1, "IP:\t%s\n", ip.IP)
		}
	}
	if c := metav1.GetControllerOf(pod); c != nil {
		w.Write(level0, "Controlled By:\t%s/%s\n", c.Kind, c.Name)
	}
	if pod.Status.NominatedNodeName != "" {
		w.Write(level0, "NominatedNodeName:\t%s\n", pod.Status.NominatedNodeName)
	}
	if len(pod.Spec.InitContainers) > 0 {
		describeContainers("Init Containers", pod.Spec.InitContainers, pod.Status.InitContainerStatuses, pod, w, "")
	}
	describeContainers("Containers", pod.Spec.Containers, pod.Status.ContainerStatuses, pod, w, "")
	if len(pod.Spec.ReadinessGates) > 0 {
		w.Write(level0, "Readiness Gates:\n  Type\tStatus\n")
		for _, g := range pod.Spec.ReadinessGates {
			status := "<none>"
			for _, c := range pod.Status.Conditions {
				if c.Type == g.ConditionType {
					status = string(c.Status)
					break
				}
			}
			w.Write(level1, "%v \t%v \n", g.ConditionType, status)
		}
	}
	if len(pod.Status.Conditions) > 0 {
		w.Write(level0, "Conditions:\n  Type\tStatus\n")
		for _, c := range pod.Status.Conditions {
			w.Write(level1, "%v \t%v \n", c.Type, c.Status)
		}
	}
	describeVolumes(pod.Spec.Volumes, w, "")
	w.Write(level0, "QoS Class:\t%s\n", podQOS(pod))
	printLabelsMultiline(w, "Node-Selectors", pod.Spec.NodeSelector)
	printTolerations(w, "Tolerations", pod.Spec.Tolerations)
	describeEvents(events, w)
}

func describeContainers(label string, containers []corev1.Container, statuses []corev1.ContainerStatus, pod *corev1.Pod, w *describeWriter, space string) {
	byName := map[string]corev1.ContainerStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	none := ""
	if len(containers) == 0 {
		none = " <none>"
	}
	w.Write(level0, "%s%s:%s\n", space, label, none)
	for _, c := range containers {
		status, ok := byName[c.Name]
		nameIndent := ""
		if space != "" {
			nameIndent = " "
		}
		w.Write(level1, "%s%v:\n", nameIndent, c.Name)
		if ok {
			w.Write(level2, "Container ID:\t%s\n", status.ContainerID)
		}
		w.Write(level2, "Image:\t%s\n", c.Image)
		if ok {
			w.Write(level2, "Image ID:\t%s\n", status.ImageID)
		}
		ports := make([]string, 0, len(c.Ports))
		hostPorts := make([]string, 0, len(c.Ports))
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, fmt.Sprintf("%d/%s", p.ContainerPort, proto))
			hostPorts = append(hostPorts, fmt.Sprintf("%d/%s", p.HostPort, proto))
		}
		if portString := strings.Join(ports, ", "); strings.Contains(portString, ",") {
			w.Write(level2, "Ports:\t%s\n", portString)
		} else {
			w.Write(level2, "Port:\t%s\n", stringOrNone(portString))
		}
		if hp := strings.Join(hostPorts, ", "); strings.Contains(hp, ",") {
			w.Write(level2, "Host Ports:\t%s\n", hp)
		} else {
			w.Write(level2, "Host Port:\t%s\n", stringOrNone(hp))
		}
		if len(c.Command) > 0 {
			w.Write(level2, "Command:\n")
			for _, s := range c.Command {
				for _, line := range strings.Split(s, "\n") {
					w.Write(level3, "%s\n", line)
				}
			}
		}
		if len(c.Args) > 0 {
			w.Write(level2, "Args:\n")
			for _, s := range c.Args {
				for _, line := range strings.Split(s, "\n") {
					w.Write(level3, "%s\n", line)
				}
			}
		}
		if ok {
			describeContainerState("State", status.State, w)
			if status.LastTerminationState.Terminated != nil {
				describeContainerState("Last State", status.LastTerminationState, w)
			}
			w.Write(level2, "Ready:\t%v\n", printBool(status.Ready))
			w.Write(level2, "Restart Count:\t%d\n", status.RestartCount)
		}
		describeResources(&c.Resources, w)
		if c.LivenessProbe != nil {
			w.Write(level2, "Liveness:\t%s\n", describeProbe(c.LivenessProbe))
		}
		if c.ReadinessProbe != nil {
			w.Write(level2, "Readiness:\t%s\n", describeProbe(c.ReadinessProbe))
		}
		if c.StartupProbe != nil {
			w.Write(level2, "Startup:\t%s\n", describeProbe(c.StartupProbe))
		}
		if len(c.EnvFrom) > 0 {
			w.Write(level2, "Environment Variables from:\n")
			for _, e := range c.EnvFrom {
				from, name, optional := "", "", false
				if e.ConfigMapRef != nil {
					from, name = "ConfigMap", e.ConfigMapRef.Name
					optional = e.ConfigMapRef.Optional != nil && *e.ConfigMapRef.Optional
				} else if e.SecretRef != nil {
					from, name = "Secret", e.SecretRef.Name
					optional = e.SecretRef.Optional != nil && *e.SecretRef.Optional
				}
				if e.Prefix == "" {
					w.Write(level3, "%s\t%s\tOptional: %t\n", name, from, optional)
				} else {
					w.Write(level3, "%s\t%s with prefix '%s'\tOptional: %t\n", name, from, e.Prefix, optional)
				}
			}
		}
		describeEnv(c, pod, w)
		none := ""
		if len(c.VolumeMounts) == 0 {
			none = "\t<none>"
		}
		w.Write(level2, "Mounts:%s\n", none)
		mounts := append([]corev1.VolumeMount(nil), c.VolumeMounts...)
		sort.Slice(mounts, func(i, j int) bool { return mounts[i].MountPath < mounts[j].MountPath })
		for _, m := range mounts {
			flags := []string{"rw"}
			if m.ReadOnly {
				flags[0] = "ro"
			}
			if m.SubPath != "" {
				flags = append(flags, fmt.Sprintf("path=%q", m.SubPath))
			}
			w.Write(level3, "%s from %s (%s)\n", m.MountPath, m.Name, strings.Join(flags, ","))
		}
	}
}

func describeContainerState(name string, state corev1.ContainerState, w *describeWriter) {
	switch {
	case state.Running != nil:
		w.Write(level2, "%s:\tRunning\n", name)
		w.Write(level3, "Started:\t%v\n", state.Running.StartedAt.Time.Format(time.RFC1123Z))
	case state.Waiting != nil:
		w.Write(level2, "%s:\tWaiting\n", name)
		if state.Waiting.Reason != "" {
			w.Write(level3, "Reason:\t%s\n", state.Waiting.Reason)
		}
	case state.Terminated != nil:
		t := state.Terminated
		w.Write(level2, "%s:\tTerminated\n", name)
		if t.Reason != "" {
			w.Write(level3, "Reason:\t%s\n", t.Reason)
		}
		if t.Message != "" {
			w.Write(level3, "Message:\t%s\n", t.Message)
		}
		w.Write(level3, "Exit Code:\t%d\n", t.ExitCode)
		if t.Signal > 0 {
			w.Write(level3, "Signal:\t%d\n", t.Signal)
		}
		w.Write(level3, "Started:\t%s\n", t.StartedAt.Time.Format(time.RFC1123Z))
		w.Write(level3, "Finished:\t%s\n", t.FinishedAt.Time.Format(time.RFC1123Z))
	default:
		w.Write(level2, "%s:\tWaiting\n", name)
	}
}

func describeResources(r *corev1.ResourceRequirements, w *describeWriter) {
	if len(r.Limits) > 0 {
		w.Write(level2, "Limits:\n")
		for _, name := range sortedResourceNames(r.Limits) {
			q := r.Limits[name]
			w.Write(level3, "%s:\t%s\n", name, q.String())
		}
	}
	if len(r.Requests) > 0 {
		w.Write(level2, "Requests:\n")
		for _, name := range sortedResourceNames(r.Requests) {
			q := r.Requests[name]
			w.Write(level3, "%s:\t%s\n", name, q.String())
		}
	}
}

func sortedResourceNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	return names
}

// describeProbe is kubectl's DescribeProbe: the handler, then
// "delay=0s timeout=1s period=10s #success=1 #failure=3".
func describeProbe(p *corev1.Probe) string {
	attrs := fmt.Sprintf("delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
	switch {
	case p.Exec != nil:
		return fmt.Sprintf("exec %v %s", p.Exec.Command, attrs)
	case p.HTTPGet != nil:
		u := &url.URL{}
		u.Scheme = strings.ToLower(string(p.HTTPGet.Scheme))
		if u.Scheme == "" {
			u.Scheme = "http"
		}
		if port := p.HTTPGet.Port.String(); port != "" && !(p.HTTPGet.Port.Type == intstr.Int && p.HTTPGet.Port.IntVal == 0) {
			u.Host = net.JoinHostPort(p.HTTPGet.Host, port)
		} else {
			u.Host = p.HTTPGet.Host
		}
		u.Path = p.HTTPGet.Path
		return fmt.Sprintf("http-get %s %s", u.String(), attrs)
	case p.TCPSocket != nil:
		return fmt.Sprintf("tcp-socket %s:%s %s", p.TCPSocket.Host, p.TCPSocket.Port.String(), attrs)
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return fmt.Sprintf("grpc <pod>:%d %s %s", p.GRPC.Port, service, attrs)
	}
	return fmt.Sprintf("unknown %s", attrs)
}

func describeEnv(c corev1.Container, pod *corev1.Pod, w *describeWriter) {
	none := ""
	if len(c.Env) == 0 {
		none = "\t<none>"
	}
	w.Write(level2, "Environment:%s\n", none)
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			for i, s := range strings.Split(e.Value, "\n") {
				if i == 0 {
					w.Write(level3, "%s:\t%s\n", e.Name, s)
				} else {
					w.Write(level3, "\t%s\n", s)
				}
			}
			continue
		}
		switch vf := e.ValueFrom; {
		case vf.FieldRef != nil:
			w.Write(level3, "%s:\t%s (%s:%s)\n", e.Name, podFieldValue(pod, vf.FieldRef.FieldPath), vf.FieldRef.APIVersion, vf.FieldRef.FieldPath)
		case vf.ResourceFieldRef != nil:
			w.Write(level3, "%s:\t%s (%s)\n", e.Name, "", vf.ResourceFieldRef.Resource)
		case vf.SecretKeyRef != nil:
			optional := vf.SecretKeyRef.Optional != nil && *vf.SecretKeyRef.Optional
			w.Write(level3, "%s:\t<set to the key '%s' in secret '%s'>\tOptional: %t\n", e.Name, vf.SecretKeyRef.Key, vf.SecretKeyRef.Name, optional)
		case vf.ConfigMapKeyRef != nil:
			optional := vf.ConfigMapKeyRef.Optional != nil && *vf.ConfigMapKeyRef.Optional
			w.Write(level3, "%s:\t<set to the key '%s' of config map '%s'>\tOptional: %t\n", e.Name, vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Name, optional)
		}
	}
}

// podFieldValue resolves the downward API field paths kubectl resolves
// for describe (fieldpath.ExtractFieldPathAsString).
func podFieldValue(pod *corev1.Pod, path string) string {
	if pod == nil {
		return ""
	}
	switch path {
	case "metadata.name":
		return pod.Name
	case "metadata.namespace":
		return pod.Namespace
	case "metadata.uid":
		return string(pod.UID)
	case "spec.nodeName":
		return pod.Spec.NodeName
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName
	case "status.hostIP":
		return pod.Status.HostIP
	case "status.podIP":
		return pod.Status.PodIP
	case "status.podIPs":
		ips := make([]string, len(pod.Status.PodIPs))
		for i, ip := range pod.Status.PodIPs {
			ips[i] = ip.IP
		}
		return strings.Join(ips, ",")
	}
	for _, m := range []struct {
		prefix string
		values map[string]string
	}{{"metadata.labels", pod.Labels}, {"metadata.annotations", pod.Annotations}} {
		if rest, ok := strings.CutPrefix(path, m.prefix); ok {
			if rest == "" {
				return formatMap(m.values)
			}
			if key, ok := strings.CutPrefix(rest, "['"); ok {
				return m.values[strings.TrimSuffix(key, "']")]
			}
		}
	}
	return ""
}

func formatMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func describeVolumes(volumes []corev1.Volume, w *describeWriter, space string) {
	if len(volumes) == 0 {
		w.Write(level0, "%sVolumes:\t<none>\n", space)
		return
	}
	w.Write(level0, "%sVolumes:\n", space)
	for _, v := range volumes {
		nameIndent := ""
		if space != "" {
			nameIndent = " "
		}
		w.Write(level1, "%s%v:\n", nameIndent, v.Name)
		switch {
		case v.ConfigMap != nil:
			optional := v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
			w.Write(level2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t%v\n    Optional:\t%v\n", v.ConfigMap.Name, optional)
		case v.Secret != nil:
			optional := v.Secret.Optional != nil && *v.Secret.Optional
			w.Write(level2, "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t%v\n    Optional:\t%v\n", v.Secret.SecretName, optional)
		case v.EmptyDir != nil:
			limit := "<unset>"
			if v.EmptyDir.SizeLimit != nil {
				limit = v.EmptyDir.SizeLimit.String()
			}
			w.Write(level2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t%v\n    SizeLimit:\t%v\n", v.EmptyDir.Medium, limit)
		case v.HostPath != nil:
			hostPathType := "<none>"
			if v.HostPath.Type != nil {
				hostPathType = string(*v.HostPath.Type)
			}
			w.Write(level2, "Type:\tHostPath (bare host directory volume)\n    Path:\t%v\n    HostPathType:\t%v\n", v.HostPath.Path, hostPathType)
		case v.DownwardAPI != nil:
			w.Write(level2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n")
			for _, m := range v.DownwardAPI.Items {
				if m.FieldRef != nil {
					w.Write(level3, "%v -> %v\n", m.FieldRef.FieldPath, m.Path)
				}
			}
		case v.Projected != nil:
			w.Write(level2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
		default:
			w.Write(level2, "<unknown>\n")
		}
	}
}

func printTolerations(w *describeWriter, title string, tolerations []corev1.Toleration) {
	w.Write(level0, "%s:\t", title)
	if len(tolerations) == 0 {
		w.WriteLine("<none>")
		return
	}
	ts := append([]corev1.Toleration(nil), tolerations...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Key < ts[j].Key })
	for i, t := range ts {
		if i != 0 {
			w.Write(level0, "\t")
		}
		w.Write(level0, "%s", t.Key)
		if t.Value != "" {
			w.Write(level0, "=%s", t.Value)
		}
		if t.Effect != "" {
			w.Write(level0, ":%s", t.Effect)
		}
		if t.Operator == corev1.TolerationOpExists && t.Value == "" {
			if t.Key != "" || t.Effect != "" {
				w.Write(level0, " op=Exists")
			} else {
				w.Write(level0, "op=Exists")
			}
		}
		if t.TolerationSeconds != nil {
			w.Write(level0, " for %ds", *t.TolerationSeconds)
		}
		w.Write(level0, "\n")
	}
}

// podQOS is the pod's QoS class: status.qosClass when the node set it,
// else computed as the API documents it (Guaranteed: every container has
// equal cpu and memory requests and limits; BestEffort: none has any;
// Burstable otherwise).
func podQOS(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	any, guaranteed := false, true
	all := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
			any = true
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			lim, ok := c.Resources.Limits[r]
			if !ok {
				guaranteed = false
				continue
			}
			if req, ok := c.Resources.Requests[r]; ok && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func describeService(svc *corev1.Service, slices []discoveryv1.EndpointSlice, events []corev1.Event, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", svc.Name)
	w.Write(level0, "Namespace:\t%s\n", svc.Namespace)
	printLabelsMultiline(w, "Labels", svc.Labels)
	printAnnotationsMultiline(w, "Annotations", svc.Annotations)
	w.Write(level0, "Selector:\t%s\n", labels.FormatLabels(svc.Spec.Selector))
	svcType := svc.Spec.Type
	if svcType == "" {
		svcType = corev1.ServiceTypeClusterIP
	}
	w.Write(level0, "Type:\t%s\n", svcType)
	if svc.Spec.IPFamilyPolicy != nil {
		w.Write(level0, "IP Family Policy:\t%s\n", *svc.Spec.IPFamilyPolicy)
	}
	if len(svc.Spec.IPFamilies) > 0 {
		fams := make([]string, len(svc.Spec.IPFamilies))
		for i, f := range svc.Spec.IPFamilies {
			fams[i] = string(f)
		}
		w.Write(level0, "IP Families:\t%s\n", strings.Join(fams, ","))
	} else {
		w.Write(level0, "IP Families:\t<none>\n")
	}
	w.Write(level0, "IP:\t%s\n", svc.Spec.ClusterIP)
	if len(svc.Spec.ClusterIPs) > 0 {
		w.Write(level0, "IPs:\t%s\n", strings.Join(svc.Spec.ClusterIPs, ","))
	} else {
		w.Write(level0, "IPs:\t<none>\n")
	}
	if len(svc.Spec.ExternalIPs) > 0 {
		w.Write(level0, "External IPs:\t%v\n", strings.Join(svc.Spec.ExternalIPs, ","))
	}
	if svc.Spec.LoadBalancerIP != "" {
		w.Write(level0, "Desired LoadBalancer IP:\t%s\n", svc.Spec.LoadBalancerIP)
	}
	if svc.Spec.ExternalName != "" {
		w.Write(level0, "External Name:\t%s\n", svc.Spec.ExternalName)
	}
	if len(svc.Status.LoadBalancer.Ingress) > 0 {
		var list []string
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				s := in.IP
				if in.IPMode != nil {
					s += fmt.Sprintf(" (%s)", *in.IPMode)
				}
				list = append(list, s)
			} else {
				list = append(list, in.Hostname)
			}
		}
		w.Write(level0, "LoadBalancer Ingress:\t%s\n", strings.Join(list, ", "))
	}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		name := sp.Name
		if name == "" {
			name = "<unset>"
		}
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		w.Write(level0, "Port:\t%s\t%d/%s\n", name, sp.Port, proto)
		switch {
		case sp.TargetPort.Type == intstr.String:
			w.Write(level0, "TargetPort:\t%s/%s\n", sp.TargetPort.StrVal, proto)
		case sp.TargetPort.IntVal == 0:
			// Not defaulted yet: the API server defaults it to port.
			w.Write(level0, "TargetPort:\t%d/%s\n", sp.Port, proto)
		default:
			w.Write(level0, "TargetPort:\t%d/%s\n", sp.TargetPort.IntVal, proto)
		}
		if sp.NodePort != 0 {
			w.Write(level0, "NodePort:\t%s\t%d/%s\n", name, sp.NodePort, proto)
		}
		w.Write(level0, "Endpoints:\t%s\n", formatEndpointSlices(slices, sets.New(sp.Name)))
	}
	affinity := svc.Spec.SessionAffinity
	if affinity == "" {
		affinity = corev1.ServiceAffinityNone
	}
	w.Write(level0, "Session Affinity:\t%s\n", affinity)
	if svc.Spec.ExternalTrafficPolicy != "" {
		w.Write(level0, "External Traffic Policy:\t%s\n", svc.Spec.ExternalTrafficPolicy)
	}
	if svc.Spec.InternalTrafficPolicy != nil {
		w.Write(level0, "Internal Traffic Policy:\t%s\n", *svc.Spec.InternalTrafficPolicy)
	}
	if svc.Spec.HealthCheckNodePort != 0 {
		w.Write(level0, "HealthCheck NodePort:\t%d\n", svc.Spec.HealthCheckNodePort)
	}
	if len(svc.Spec.LoadBalancerSourceRanges) > 0 {
		w.Write(level0, "LoadBalancer Source Ranges:\t%v\n", strings.Join(svc.Spec.LoadBalancerSourceRanges, ","))
	}
	if svc.Spec.TrafficDistribution != nil && *svc.Spec.TrafficDistribution != "" {
		w.Write(level0, "Traffic Distribution:\t%s\n", *svc.Spec.TrafficDistribution)
	}
	describeEvents(events, w)
}

// formatEndpointSlices lists the ready addresses of the slices' ports
// named in ports (nil: all), at most three then "+ N more...".
func formatEndpointSlices(slices []discoveryv1.EndpointSlice, ports sets.Set[string]) string {
	if len(slices) == 0 {
		return "<none>"
	}
	var list []string
	max, more, count := 3, false, 0
	ready := func(ep *discoveryv1.Endpoint) bool {
		return ep.Conditions.Ready == nil || *ep.Conditions.Ready
	}
	for i := range slices {
		s := &slices[i]
		if len(s.Ports) == 0 {
			for j := range s.Endpoints {
				if len(list) == max {
					more = true
				}
				if !ready(&s.Endpoints[j]) || len(s.Endpoints[j].Addresses) == 0 {
					continue
				}
				if !more {
					list = append(list, s.Endpoints[j].Addresses[0])
				}
				count++
			}
			continue
		}
		for _, port := range s.Ports {
			name := ""
			if port.Name != nil {
				name = *port.Name
			}
			if ports != nil && !ports.Has(name) {
				continue
			}
			for k := range s.Endpoints {
				if len(list) == max {
					more = true
				}
				if !ready(&s.Endpoints[k]) || len(s.Endpoints[k].Addresses) == 0 || port.Port == nil {
					continue
				}
				if !more {
					list = append(list, joinHostPort(s.Endpoints[k].Addresses[0], *port.Port))
				}
				count++
			}
		}
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	return ret
}

func describeEndpointSlice(eps *discoveryv1.EndpointSlice, events []corev1.Event, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", eps.Name)
	w.Write(level0, "Namespace:\t%s\n", eps.Namespace)
	printLabelsMultiline(w, "Labels", eps.Labels)
	printAnnotationsMultiline(w, "Annotations", eps.Annotations)
	w.Write(level0, "AddressType:\t%s\n", string(eps.AddressType))
	if len(eps.Ports) == 0 {
		w.Write(level0, "Ports: <unset>\n")
	} else {
		w.Write(level0, "Ports:\n")
		w.Write(level1, "Name\tPort\tProtocol\n")
		w.Write(level1, "----\t----\t--------\n")
		for _, p := range eps.Ports {
			name, num, proto := "<unset>", "<unset>", "<unset>"
			if p.Name != nil && *p.Name != "" {
				name = *p.Name
			}
			if p.Port != nil {
				num = strconv.Itoa(int(*p.Port))
			}
			if p.Protocol != nil {
				proto = string(*p.Protocol)
			}
			w.Write(level1, "%s\t%s\t%s\n", name, num, proto)
		}
	}
	if len(eps.Endpoints) == 0 {
		w.Write(level0, "Endpoints: <none>\n")
	} else {
		w.Write(level0, "Endpoints:\n")
		for i := range eps.Endpoints {
			ep := &eps.Endpoints[i]
			w.Write(level1, "- Addresses:\t%s\n", stringOrNone(strings.Join(ep.Addresses, ", ")))
			w.Write(level2, "Conditions:\n")
			boolText := func(b *bool) string {
				if b == nil {
					return "<unset>"
				}
				return strconv.FormatBool(*b)
			}
			w.Write(level3, "Ready:\t%s\n", boolText(ep.Conditions.Ready))
			hostname := "<unset>"
			if ep.Hostname != nil {
				hostname = *ep.Hostname
			}
			w.Write(level2, "Hostname:\t%s\n", hostname)
			if ep.TargetRef != nil {
				w.Write(level2, "TargetRef:\t%s/%s\n", ep.TargetRef.Kind, ep.TargetRef.Name)
			}
			node := "<unset>"
			if ep.NodeName != nil {
				node = *ep.NodeName
			}
			w.Write(level2, "NodeName:\t%s\n", node)
			zone := "<unset>"
			if ep.Zone != nil {
				zone = *ep.Zone
			}
			w.Write(level2, "Zone:\t%s\n", zone)
		}
	}
	describeEvents(events, w)
}

func describePodTemplate(t *corev1.PodTemplateSpec, w *describeWriter) {
	w.Write(level0, "Pod Template:\n")
	if t == nil {
		w.Write(level1, "<unset>")
		return
	}
	printLabelsMultiline(w, "  Labels", t.Labels)
	if len(t.Annotations) > 0 {
		printAnnotationsMultiline(w, "  Annotations", t.Annotations)
	}
	if t.Spec.ServiceAccountName != "" {
		w.Write(level1, "Service Account:\t%s\n", t.Spec.ServiceAccountName)
	}
	if len(t.Spec.InitContainers) > 0 {
		describeContainers("Init Containers", t.Spec.InitContainers, nil, nil, w, "  ")
	}
	describeContainers("Containers", t.Spec.Containers, nil, nil, w, "  ")
	describeVolumes(t.Spec.Volumes, w, "  ")
	if t.Spec.PriorityClassName != "" {
		w.Write(level1, "Priority Class Name:\t%s\n", t.Spec.PriorityClassName)
	}
	printLabelsMultiline(w, "  Node-Selectors", t.Spec.NodeSelector)
	printTolerations(w, "  Tolerations", t.Spec.Tolerations)
}

func describeDeployment(d *appsv1.Deployment, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, events []corev1.Event, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", d.Name)
	w.Write(level0, "Namespace:\t%s\n", d.Namespace)
	w.Write(level0, "CreationTimestamp:\t%s\n", d.CreationTimestamp.Time.Format(time.RFC1123Z))
	printLabelsMultiline(w, "Labels", d.Labels)
	printAnnotationsMultiline(w, "Annotations", d.Annotations)
	w.Write(level0, "Selector:\t%s\n", selectorString(d.Spec.Selector))
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	w.Write(level0, "Replicas:\t%d desired | %d updated | %d total | %d available | %d unavailable\n",
		replicas, d.Status.UpdatedReplicas, d.Status.Replicas, d.Status.AvailableReplicas, d.Status.UnavailableReplicas)
	strategy := d.Spec.Strategy.Type
	if strategy == "" {
		strategy = appsv1.RollingUpdateDeploymentStrategyType
	}
	w.Write(level0, "StrategyType:\t%s\n", strategy)
	w.Write(level0, "MinReadySeconds:\t%d\n", d.Spec.MinReadySeconds)
	if strategy == appsv1.RollingUpdateDeploymentStrategyType {
		// The API server defaults both to 25%.
		maxUnavailable, maxSurge := intstr.FromString("25%"), intstr.FromString("25%")
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
			if ru.MaxUnavailable != nil {
				maxUnavailable = *ru.MaxUnavailable
			}
			if ru.MaxSurge != nil {
				maxSurge = *ru.MaxSurge
			}
		}
		w.Write(level0, "RollingUpdateStrategy:\t%s max unavailable, %s max surge\n", maxUnavailable.String(), maxSurge.String())
	}
	describePodTemplate(&d.Spec.Template, w)
	if len(d.Status.Conditions) > 0 {
		w.Write(level0, "Conditions:\n  Type\tStatus\tReason\n")
		w.Write(level1, "----\t------\t------\n")
		for _, c := range d.Status.Conditions {
			w.Write(level1, "%v \t%v\t%v\n", c.Type, c.Status, c.Reason)
		}
	}
	if len(oldRSs) > 0 || newRS != nil {
		var newRSs []*appsv1.ReplicaSet
		if newRS != nil {
			newRSs = []*appsv1.ReplicaSet{newRS}
		}
		w.Write(level0, "OldReplicaSets:\t%s\n", replicaSetsString(oldRSs))
		w.Write(level0, "NewReplicaSet:\t%s\n", replicaSetsString(newRSs))
	}
	describeEvents(events, w)
}

func replicaSetsString(rss []*appsv1.ReplicaSet) string {
	s := make([]string, 0, len(rss))
	for _, rs := range rss {
		desired := int32(1)
		if rs.Spec.Replicas != nil {
			desired = *rs.Spec.Replicas
		}
		s = append(s, fmt.Sprintf("%s (%d/%d replicas created)", rs.Name, rs.Status.Replicas, desired))
	}
	if len(s) == 0 {
		return "<none>"
	}
	return strings.Join(s, ", ")
}

func describeReplicaSet(rs *appsv1.ReplicaSet, running, waiting, succeeded, failed int, events []corev1.Event, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", rs.Name)
	w.Write(level0, "Namespace:\t%s\n", rs.Namespace)
	w.Write(level0, "Selector:\t%s\n", metav1.FormatLabelSelector(rs.Spec.Selector))
	printLabelsMultiline(w, "Labels", rs.Labels)
	printAnnotationsMultiline(w, "Annotations", rs.Annotations)
	if c := metav1.GetControllerOf(rs); c != nil {
		w.Write(level0, "Controlled By:\t%s/%s\n", c.Kind, c.Name)
	}
	desired := int32(1)
	if rs.Spec.Replicas != nil {
		desired = *rs.Spec.Replicas
	}
	w.Write(level0, "Replicas:\t%d current / %d desired\n", rs.Status.Replicas, desired)
	w.Write(level0, "Pods Status:\t%d Running / %d Waiting / %d Succeeded / %d Failed\n", running, waiting, succeeded, failed)
	describePodTemplate(&rs.Spec.Template, w)
	if len(rs.Status.Conditions) > 0 {
		w.Write(level0, "Conditions:\n  Type\tStatus\tReason\n")
		w.Write(level1, "----\t------\t------\n")
		for _, c := range rs.Status.Conditions {
			w.Write(level1, "%v \t%v\t%v\n", c.Type, c.Status, c.Reason)
		}
	}
	describeEvents(events, w)
}

func describeNode(node *corev1.Node, pods []*corev1.Pod, events []corev1.Event, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", node.Name)
	if roles := findNodeRoles(node); len(roles) > 0 {
		w.Write(level0, "Roles:\t%s\n", strings.Join(roles, ","))
	} else {
		w.Write(level0, "Roles:\t<none>\n")
	}
	printLabelsMultiline(w, "Labels", node.Labels)
	printAnnotationsMultiline(w, "Annotations", node.Annotations)
	w.Write(level0, "CreationTimestamp:\t%s\n", node.CreationTimestamp.Time.Format(time.RFC1123Z))
	w.Write(level0, "Taints:\t")
	if len(node.Spec.Taints) == 0 {
		w.WriteLine("<none>")
	} else {
		for i, t := range node.Spec.Taints {
			if i != 0 {
				w.Write(level0, "\t")
			}
			w.Write(level0, "%s\n", t.ToString())
		}
	}
	w.Write(level0, "Unschedulable:\t%v\n", node.Spec.Unschedulable)
	if len(node.Status.Conditions) > 0 {
		w.Write(level0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
		w.Write(level1, "----\t------\t-----------------\t------------------\t------\t-------\n")
		for _, c := range node.Status.Conditions {
			w.Write(level1, "%v \t%v \t%s \t%s \t%v \t%v\n", c.Type, c.Status,
				c.LastHeartbeatTime.Time.Format(time.RFC1123Z), c.LastTransitionTime.Time.Format(time.RFC1123Z), c.Reason, c.Message)
		}
	}
	w.Write(level0, "Addresses:\n")
	for _, a := range node.Status.Addresses {
		w.Write(level1, "%s:\t%s\n", a.Type, a.Address)
	}
	printResources := func(title string, l corev1.ResourceList) {
		if len(l) == 0 {
			return
		}
		w.Write(level0, "%s:\n", title)
		for _, name := range sortedResourceNames(l) {
			q := l[name]
			w.Write(level0, "  %s:\t%s\n", name, q.String())
		}
	}
	printResources("Capacity", node.Status.Capacity)
	printResources("Allocatable", node.Status.Allocatable)
	info := node.Status.NodeInfo
	w.Write(level0, "System Info:\n")
	w.Write(level0, "  Machine ID:\t%s\n", info.MachineID)
	w.Write(level0, "  System UUID:\t%s\n", info.SystemUUID)
	w.Write(level0, "  Boot ID:\t%s\n", info.BootID)
	w.Write(level0, "  Kernel Version:\t%s\n", info.KernelVersion)
	w.Write(level0, "  OS Image:\t%s\n", info.OSImage)
	w.Write(level0, "  Operating System:\t%s\n", info.OperatingSystem)
	w.Write(level0, "  Architecture:\t%s\n", info.Architecture)
	w.Write(level0, "  Container Runtime Version:\t%s\n", info.ContainerRuntimeVersion)
	w.Write(level0, "  Kubelet Version:\t%s\n", info.KubeletVersion)
	if len(node.Spec.PodCIDRs) > 0 {
		w.Write(level0, "PodCIDRs:\t%s\n", strings.Join(node.Spec.PodCIDRs, ","))
	} else if node.Spec.PodCIDR != "" {
		w.Write(level0, "PodCIDR:\t%s\n", node.Spec.PodCIDR)
	}
	w.Write(level0, "Non-terminated Pods:\t(%d in total)\n", len(pods))
	w.Write(level1, "Namespace\tName\tIP\tAge\n")
	w.Write(level1, "---------\t----\t--\t---\n")
	for _, p := range pods {
		w.Write(level1, "%s\t%s\t%s\t%s\n", p.Namespace, p.Name, stringOrNone(p.Status.PodIP), translateTimestampSince(p.CreationTimestamp, w.now))
	}
	describeEvents(events, w)
}

func describeNamespace(ns *corev1.Namespace, events []corev1.Event, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", ns.Name)
	printLabelsMultiline(w, "Labels", ns.Labels)
	printAnnotationsMultiline(w, "Annotations", ns.Annotations)
	w.Write(level0, "Status:\t%s\n", string(ns.Status.Phase))
	w.Write(level0, "\nNo resource quota.\n")
	w.Write(level0, "\nNo LimitRange resource.\n")
	if len(events) > 0 {
		describeEvents(events, w)
	}
}

func describeConfigMap(cm *corev1.ConfigMap, events []corev1.Event, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", cm.Name)
	w.Write(level0, "Namespace:\t%s\n", cm.Namespace)
	printLabelsMultiline(w, "Labels", cm.Labels)
	printAnnotationsMultiline(w, "Annotations", cm.Annotations)
	w.Write(level0, "\nData\n====\n")
	for _, k := range sortedKeys(cm.Data) {
		w.Write(level0, "%s:\n----\n", k)
		w.Write(level0, "%s\n", cm.Data[k])
		w.Write(level0, "\n")
	}
	w.Write(level0, "\nBinaryData\n====\n")
	for _, k := range sortedKeys(cm.BinaryData) {
		w.Write(level0, "%s: %d bytes\n", k, len(cm.BinaryData[k]))
	}
	w.Write(level0, "\n")
	describeEvents(events, w)
}

func describeSecret(s *corev1.Secret, w *describeWriter) {
	w.Write(level0, "Name:\t%s\n", s.Name)
	w.Write(level0, "Namespace:\t%s\n", s.Namespace)
	printLabelsMultiline(w, "Labels", s.Labels)
	printAnnotationsMultiline(w, "Annotations", s.Annotations)
	w.Write(level0, "\nType:\t%s\n", s.Type)
	w.Write(level0, "\nData\n====\n")
	sizes := map[string]int{}
	for k, v := range s.Data {
		sizes[k] = len(v)
	}
	for k, v := range s.StringData {
		sizes[k] = len(v)
	}
	for _, k := range sortedKeys(sizes) {
		w.Write(level0, "%s:\t%d bytes\n", k, sizes[k])
	}
}

// describeGeneric covers the other kinds, as kubectl's generic describer
// does: metadata, then the object's spec and status as YAML, then events.
func describeGeneric(it item, events []corev1.Event, w *describeWriter) {
	o := it.obj
	w.Write(level0, "Name:\t%s\n", o.GetName())
	if it.kind.Namespaced {
		w.Write(level0, "Namespace:\t%s\n", o.GetNamespace())
	}
	printLabelsMultiline(w, "Labels", o.GetLabels())
	printAnnotationsMultiline(w, "Annotations", o.GetAnnotations())
	w.Write(level0, "API Version:\t%s\n", it.kind.GVK.GroupVersion().String())
	w.Write(level0, "Kind:\t%s\n", it.kind.GVK.Kind)
	w.Write(level0, "CreationTimestamp:\t%s\n", o.GetCreationTimestamp().Time.Format(time.RFC1123Z))
	m, err := objectMap(it)
	if err == nil {
		w.Flush()
		keys := sortedKeys(m)
		for _, k := range keys {
			switch k {
			case "apiVersion", "kind", "metadata":
				continue
			}
			v := m[k]
			if vm, ok := v.(map[string]any); ok && len(vm) == 0 {
				continue
			}
			b, err := yaml.Marshal(v)
			if err != nil {
				continue
			}
			w.Write(level0, "%s:\n", strings.ToUpper(k[:1])+k[1:])
			for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
				w.Write(level1, "%s\n", line)
			}
		}
	}
	describeEvents(events, w)
}
