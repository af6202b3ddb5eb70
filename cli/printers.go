package cli

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/switchboard-dev/switchboard/cluster"
)

// The table printers re-create the API server's table columns
// (pkg/printers/internalversion/printers.go in kubernetes/kubernetes) that
// kubectl get shows; a column with Priority 1 there is a -o wide column
// here.

// printOpts select what a table shows.
type printOpts struct {
	wide          bool
	now           time.Time
	showLabels    bool
	noHeaders     bool
	withNamespace bool // -A: a NAMESPACE column first
	withKind      bool // several kinds: names printed as kind/name
}

// translateTimestampSince is kubectl's age: "<unknown>" for a zero time,
// else duration.HumanDuration of the time since.
func translateTimestampSince(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func translateMicroTimestampSince(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// columns are the headers of a kind's table (without NAMESPACE/LABELS).
func columns(k *cluster.Kind, wide bool) []string {
	var c, w []string
	switch k {
	case cluster.KindPod:
		c = []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
		w = []string{"IP", "NODE", "NOMINATED NODE", "READINESS GATES"}
	case cluster.KindService:
		c = []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}
		w = []string{"SELECTOR"}
	case cluster.KindEndpointSlice:
		c = []string{"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"}
	case cluster.KindDeployment:
		c = []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}
		w = []string{"CONTAINERS", "IMAGES", "SELECTOR"}
	case cluster.KindReplicaSet:
		c = []string{"NAME", "DESIRED", "CURRENT", "READY", "AGE"}
		w = []string{"CONTAINERS", "IMAGES", "SELECTOR"}
	case cluster.KindNamespace:
		c = []string{"NAME", "STATUS", "AGE"}
	case cluster.KindNode:
		c = []string{"NAME", "STATUS", "ROLES", "AGE", "VERSION"}
		w = []string{"INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"}
	case cluster.KindConfigMap:
		c = []string{"NAME", "DATA", "AGE"}
	case cluster.KindSecret:
		c = []string{"NAME", "TYPE", "DATA", "AGE"}
	case cluster.KindServiceAccount:
		c = []string{"NAME", "SECRETS", "AGE"}
	case cluster.KindIngress:
		c = []string{"NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"}
	case cluster.KindIngressClass:
		c = []string{"NAME", "CONTROLLER", "PARAMETERS", "AGE"}
	case cluster.KindNetworkPolicy:
		c = []string{"NAME", "POD-SELECTOR", "AGE"}
	case cluster.KindEvent:
		if wide {
			return []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT", "NAME"}
		}
		return []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"}
	default:
		c = []string{"NAME", "AGE"}
	}
	if wide {
		c = append(c, w...)
	}
	return c
}

// row is one object's cells, in the order of columns.
func row(o cluster.Object, p printOpts) []string {
	switch obj := o.(type) {
	case *corev1.Pod:
		return podRow(obj, p)
	case *corev1.Service:
		return serviceRow(obj, p)
	case *discoveryv1.EndpointSlice:
		return []string{obj.Name, string(obj.AddressType), formatDiscoveryPorts(obj.Ports), formatDiscoveryEndpoints(obj.Endpoints), translateTimestampSince(obj.CreationTimestamp, p.now)}
	case *appsv1.Deployment:
		desired := int32(1)
		if obj.Spec.Replicas != nil {
			desired = *obj.Spec.Replicas
		}
		r := []string{obj.Name, fmt.Sprintf("%d/%d", obj.Status.ReadyReplicas, desired),
			strconv.Itoa(int(obj.Status.UpdatedReplicas)), strconv.Itoa(int(obj.Status.AvailableReplicas)),
			translateTimestampSince(obj.CreationTimestamp, p.now)}
		if p.wide {
			names, images := layoutContainerCells(obj.Spec.Template.Spec.Containers)
			r = append(r, names, images, selectorString(obj.Spec.Selector))
		}
		return r
	case *appsv1.ReplicaSet:
		desired := int32(1)
		if obj.Spec.Replicas != nil {
			desired = *obj.Spec.Replicas
		}
		r := []string{obj.Name, strconv.Itoa(int(desired)), strconv.Itoa(int(obj.Status.Replicas)),
			strconv.Itoa(int(obj.Status.ReadyReplicas)), translateTimestampSince(obj.CreationTimestamp, p.now)}
		if p.wide {
			names, images := layoutContainerCells(obj.Spec.Template.Spec.Containers)
			r = append(r, names, images, selectorString(obj.Spec.Selector))
		}
		return r
	case *corev1.Namespace:
		return []string{obj.Name, string(obj.Status.Phase), translateTimestampSince(obj.CreationTimestamp, p.now)}
	case *corev1.Node:
		return nodeRow(obj, p)
	case *corev1.ConfigMap:
		return []string{obj.Name, strconv.Itoa(len(obj.Data) + len(obj.BinaryData)), translateTimestampSince(obj.CreationTimestamp, p.now)}
	case *corev1.Secret:
		// Data keys; stringData keys count too, as the API server
		// merges them into data on write.
		keys := sets.New[string]()
		for k := range obj.Data {
			keys.Insert(k)
		}
		for k := range obj.StringData {
			keys.Insert(k)
		}
		return []string{obj.Name, string(obj.Type), strconv.Itoa(keys.Len()), translateTimestampSince(obj.CreationTimestamp, p.now)}
	case *corev1.ServiceAccount:
		return []string{obj.Name, strconv.Itoa(len(obj.Secrets)), translateTimestampSince(obj.CreationTimestamp, p.now)}
	case *networkingv1.Ingress:
		class := "<none>"
		if obj.Spec.IngressClassName != nil {
			class = *obj.Spec.IngressClassName
		}
		return []string{obj.Name, class, formatHosts(obj.Spec.Rules), ingressAddress(obj.Status.LoadBalancer, p.wide),
			formatIngressPorts(obj.Spec.TLS), translateTimestampSince(obj.CreationTimestamp, p.now)}
	case *networkingv1.IngressClass:
		params := "<none>"
		if pr := obj.Spec.Parameters; pr != nil {
			params = pr.Kind
			if pr.APIGroup != nil {
				params += "." + *pr.APIGroup
			}
			params += "/" + pr.Name
		}
		return []string{obj.Name, obj.Spec.Controller, params, translateTimestampSince(obj.CreationTimestamp, p.now)}
	case *networkingv1.NetworkPolicy:
		return []string{obj.Name, metav1.FormatLabelSelector(&obj.Spec.PodSelector), translateTimestampSince(obj.CreationTimestamp, p.now)}
	case *corev1.Event:
		return eventRow(obj, p)
	}
	return []string{o.GetName(), translateTimestampSince(o.GetCreationTimestamp(), p.now)}
}

// printTable writes one kind's table with kubectl's tab writer settings
// (printers.GetNewTabWriter: min width 6, tab width 4, padding 3).
func printTable(out io.Writer, k *cluster.Kind, objs []cluster.Object, p printOpts) error {
	tw := tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
	if !p.noHeaders {
		h := columns(k, p.wide)
		if p.withNamespace && k.Namespaced {
			h = append([]string{"NAMESPACE"}, h...)
		}
		if p.showLabels {
			h = append(h, "LABELS")
		}
		fmt.Fprintln(tw, strings.Join(h, "\t"))
	}
	for _, o := range objs {
		writeRow(tw, k, o, p)
	}
	return tw.Flush()
}

func writeRow(w io.Writer, k *cluster.Kind, o cluster.Object, p printOpts) {
	r := row(o, p)
	if p.withKind && k != cluster.KindEvent && len(r) > 0 {
		r[0] = kindLabel(k) + "/" + r[0]
	}
	if p.withNamespace && k.Namespaced {
		r = append([]string{o.GetNamespace()}, r...)
	}
	if p.showLabels {
		r = append(r, labels.FormatLabels(o.GetLabels()))
	}
	fmt.Fprintln(w, strings.Join(r, "\t"))
}

// podRow follows printPod in printers.go: READY counts ready running
// containers (and started restartable init containers, "sidecars"),
// STATUS starts from the phase (or status.reason) and is overridden by
// init container progress ("Init:N/M", "Init:<reason>",
// "Init:ExitCode:N"), then by the last non-running container's waiting or
// terminated reason, "Terminating" while a deletionTimestamp is set, and
// RESTARTS is "N (AGE ago)" after the last termination.
func podRow(pod *corev1.Pod, p printOpts) []string {
	ready, reason, restarts := podStatus(pod, p.now)
	r := []string{pod.Name, ready, reason, restarts, translateTimestampSince(pod.CreationTimestamp, p.now)}
	if p.wide {
		nodeName := pod.Spec.NodeName
		nominated := pod.Status.NominatedNodeName
		podIP := ""
		if len(pod.Status.PodIPs) > 0 {
			podIP = pod.Status.PodIPs[0].IP
		}
		if podIP == "" {
			podIP = pod.Status.PodIP
		}
		if podIP == "" {
			podIP = "<none>"
		}
		if nodeName == "" {
			nodeName = "<none>"
		}
		if nominated == "" {
			nominated = "<none>"
		}
		gates := "<none>"
		if len(pod.Spec.ReadinessGates) > 0 {
			trueConditions := 0
			for _, g := range pod.Spec.ReadinessGates {
				for _, c := range pod.Status.Conditions {
					if c.Type == g.ConditionType {
						if c.Status == corev1.ConditionTrue {
							trueConditions++
						}
						break
					}
				}
			}
			gates = fmt.Sprintf("%d/%d", trueConditions, len(pod.Spec.ReadinessGates))
		}
		r = append(r, podIP, nodeName, nominated, gates)
	}
	return r
}

func isRestartableInitContainer(c *corev1.Container) bool {
	return c != nil && c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func podConditionTrue(pod *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podStatus computes the READY, STATUS and RESTARTS cells as printPod.
func podStatus(pod *corev1.Pod, now time.Time) (ready, reason, restartsStr string) {
	restarts := 0
	restartableInitRestarts := 0
	total := len(pod.Spec.Containers)
	readyCount := 0
	var lastRestart, lastRestartableInitRestart metav1.Time

	reason = string(pod.Status.Phase)
	if pod.Status.Reason != "" {
		reason = pod.Status.Reason
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}

	initContainers := map[string]*corev1.Container{}
	for i := range pod.Spec.InitContainers {
		initContainers[pod.Spec.InitContainers[i].Name] = &pod.Spec.InitContainers[i]
		if isRestartableInitContainer(&pod.Spec.InitContainers[i]) {
			total++
		}
	}

	initializing := false
	for i := range pod.Status.InitContainerStatuses {
		c := pod.Status.InitContainerStatuses[i]
		restarts += int(c.RestartCount)
		if t := c.LastTerminationState.Terminated; t != nil && lastRestart.Before(&t.FinishedAt) {
			lastRestart = t.FinishedAt
		}
		if isRestartableInitContainer(initContainers[c.Name]) {
			restartableInitRestarts += int(c.RestartCount)
			if t := c.LastTerminationState.Terminated; t != nil && lastRestartableInitRestart.Before(&t.FinishedAt) {
				lastRestartableInitRestart = t.FinishedAt
			}
		}
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case isRestartableInitContainer(initContainers[c.Name]) && c.Started != nil && *c.Started:
			if c.Ready {
				readyCount++
			}
			continue
		case c.State.Terminated != nil:
			if c.State.Terminated.Reason == "" {
				if c.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Init:Signal:%d", c.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("Init:ExitCode:%d", c.State.Terminated.ExitCode)
				}
			} else {
				reason = "Init:" + c.State.Terminated.Reason
			}
			initializing = true
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + c.State.Waiting.Reason
			initializing = true
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(pod.Spec.InitContainers))
			initializing = true
		}
		break
	}

	if !initializing || podConditionTrue(pod, corev1.PodInitialized) {
		restarts = restartableInitRestarts
		lastRestart = lastRestartableInitRestart
		hasRunning := false
		for i := len(pod.Status.ContainerStatuses) - 1; i >= 0; i-- {
			c := pod.Status.ContainerStatuses[i]
			restarts += int(c.RestartCount)
			if t := c.LastTerminationState.Terminated; t != nil && lastRestart.Before(&t.FinishedAt) {
				lastRestart = t.FinishedAt
			}
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				reason = c.State.Waiting.Reason
			case c.State.Terminated != nil && c.State.Terminated.Reason != "":
				reason = c.State.Terminated.Reason
			case c.State.Terminated != nil:
				if c.State.Terminated.Signal != 0 {
					reason = fmt.Sprintf("Signal:%d", c.State.Terminated.Signal)
				} else {
					reason = fmt.Sprintf("ExitCode:%d", c.State.Terminated.ExitCode)
				}
			case c.Ready && c.State.Running != nil:
				hasRunning = true
				readyCount++
			}
		}
		// Back to "Running" when a container still runs after another
		// completed.
		if reason == "Completed" && hasRunning {
			if podConditionTrue(pod, corev1.PodReady) {
				reason = "Running"
			} else {
				reason = "NotReady"
			}
		}
	}

	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if pod.DeletionTimestamp != nil && pod.Status.Reason == "NodeLost" {
		reason = "Unknown"
	} else if pod.DeletionTimestamp != nil && !terminal {
		reason = "Terminating"
	}

	restartsStr = strconv.Itoa(restarts)
	if restarts != 0 && !lastRestart.IsZero() {
		restartsStr = fmt.Sprintf("%d (%s ago)", restarts, translateTimestampSince(lastRestart, now))
	}
	return fmt.Sprintf("%d/%d", readyCount, total), reason, restartsStr
}

func serviceRow(svc *corev1.Service, p printOpts) []string {
	svcType := svc.Spec.Type
	if svcType == "" {
		svcType = corev1.ServiceTypeClusterIP
	}
	internalIP := "<none>"
	if len(svc.Spec.ClusterIPs) > 0 {
		internalIP = svc.Spec.ClusterIPs[0]
	} else if svc.Spec.ClusterIP != "" {
		internalIP = svc.Spec.ClusterIP
	}
	ports := makePortString(svc.Spec.Ports)
	if ports == "" {
		ports = "<none>"
	}
	r := []string{svc.Name, string(svcType), internalIP, serviceExternalIP(svc, p.wide), ports, translateTimestampSince(svc.CreationTimestamp, p.now)}
	if p.wide {
		r = append(r, labels.FormatLabels(svc.Spec.Selector))
	}
	return r
}

// loadBalancerWidth clips load-balancer addresses outside -o wide.
const loadBalancerWidth = 16

func loadBalancerStatusString(s corev1.LoadBalancerStatus, wide bool) string {
	var result []string
	for _, in := range s.Ingress {
		if in.IP != "" {
			result = append(result, in.IP)
		} else if in.Hostname != "" {
			result = append(result, in.Hostname)
		}
	}
	r := strings.Join(result, ",")
	if !wide && len(r) > loadBalancerWidth {
		r = r[0:(loadBalancerWidth-3)] + "..."
	}
	return r
}

func serviceExternalIP(svc *corev1.Service, wide bool) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, "", corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return "<none>"
	case corev1.ServiceTypeLoadBalancer:
		lb := loadBalancerStatusString(svc.Status.LoadBalancer, wide)
		if len(svc.Spec.ExternalIPs) > 0 {
			var results []string
			if lb != "" {
				results = append(results, strings.Split(lb, ",")...)
			}
			results = append(results, svc.Spec.ExternalIPs...)
			return strings.Join(results, ",")
		}
		if lb != "" {
			return lb
		}
		return "<pending>"
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return "<unknown>"
}

func makePortString(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, port := range ports {
		proto := port.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		pieces[i] = fmt.Sprintf("%d/%s", port.Port, proto)
		if port.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", port.Port, port.NodePort, proto)
		}
	}
	return strings.Join(pieces, ",")
}

func listWithMoreString(list []string, more bool, count, max int) string {
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, count-max)
	}
	if ret == "" {
		ret = "<unset>"
	}
	return ret
}

func formatDiscoveryPorts(ports []discoveryv1.EndpointPort) string {
	var list []string
	max, more, count := 3, false, 0
	for _, port := range ports {
		if len(list) < max {
			n := "<unset>"
			if port.Port != nil {
				n = strconv.Itoa(int(*port.Port))
			} else if port.Name != nil {
				n = *port.Name
			}
			list = append(list, n)
		} else if len(list) == max {
			more = true
		}
		count++
	}
	return listWithMoreString(list, more, count, max)
}

func formatDiscoveryEndpoints(endpoints []discoveryv1.Endpoint) string {
	var list []string
	max, more, count := 3, false, 0
	for _, ep := range endpoints {
		for _, addr := range ep.Addresses {
			if len(list) < max {
				list = append(list, addr)
			} else if len(list) == max {
				more = true
			}
			count++
		}
	}
	return listWithMoreString(list, more, count, max)
}

func layoutContainerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i] = c.Name
		im[i] = c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

func selectorString(sel *metav1.LabelSelector) string {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "<invalid>"
	}
	return s.String()
}

const (
	labelNodeRolePrefix = "node-role.kubernetes.io/"
	nodeLabelRole       = "kubernetes.io/role"
)

func findNodeRoles(node *corev1.Node) []string {
	roles := sets.New[string]()
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, labelNodeRolePrefix):
			if role := strings.TrimPrefix(k, labelNodeRolePrefix); role != "" {
				roles.Insert(role)
			}
		case k == nodeLabelRole && v != "":
			roles.Insert(v)
		}
	}
	return sets.List(roles)
}

func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

func nodeRow(node *corev1.Node, p printOpts) []string {
	var status []string
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status == corev1.ConditionTrue {
				status = append(status, string(c.Type))
			} else {
				status = append(status, "Not"+string(c.Type))
			}
		}
	}
	if len(status) == 0 {
		status = append(status, "Unknown")
	}
	if node.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	roles := strings.Join(findNodeRoles(node), ",")
	if roles == "" {
		roles = "<none>"
	}
	r := []string{node.Name, strings.Join(status, ","), roles, translateTimestampSince(node.CreationTimestamp, p.now), node.Status.NodeInfo.KubeletVersion}
	if p.wide {
		orUnknown := func(s string) string {
			if s == "" {
				return "<unknown>"
			}
			return s
		}
		info := node.Status.NodeInfo
		r = append(r, nodeAddress(node, corev1.NodeInternalIP), nodeAddress(node, corev1.NodeExternalIP),
			orUnknown(info.OSImage), orUnknown(info.KernelVersion), orUnknown(info.ContainerRuntimeVersion))
	}
	return r
}

func formatHosts(rules []networkingv1.IngressRule) string {
	var list []string
	max, more := 3, false
	for _, rule := range rules {
		if len(list) == max {
			more = true
		}
		if !more && rule.Host != "" {
			list = append(list, rule.Host)
		}
	}
	if len(list) == 0 {
		return "*"
	}
	ret := strings.Join(list, ",")
	if more {
		return fmt.Sprintf("%s + %d more...", ret, len(rules)-max)
	}
	return ret
}

func formatIngressPorts(tls []networkingv1.IngressTLS) string {
	if len(tls) != 0 {
		return "80, 443"
	}
	return "80"
}

func ingressAddress(s networkingv1.IngressLoadBalancerStatus, wide bool) string {
	result := sets.New[string]()
	for _, in := range s.Ingress {
		if in.IP != "" {
			result.Insert(in.IP)
		} else if in.Hostname != "" {
			result.Insert(in.Hostname)
		}
	}
	r := strings.Join(sets.List(result), ",")
	if !wide && len(r) > loadBalancerWidth {
		r = r[0:(loadBalancerWidth-3)] + "..."
	}
	return r
}

func eventRow(e *corev1.Event, p printOpts) []string {
	first := translateTimestampSince(e.FirstTimestamp, p.now)
	if e.FirstTimestamp.IsZero() {
		first = translateMicroTimestampSince(e.EventTime, p.now)
	}
	last := translateTimestampSince(e.LastTimestamp, p.now)
	if e.LastTimestamp.IsZero() {
		last = first
	}
	count := e.Count
	if e.Series != nil {
		last = translateMicroTimestampSince(e.Series.LastObservedTime, p.now)
		count = e.Series.Count
	} else if count == 0 {
		count = 1
	}
	target := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		target += "/" + e.InvolvedObject.Name
	}
	if p.wide {
		return []string{last, e.Type, e.Reason, target, e.InvolvedObject.FieldPath,
			formatEventSource(e), strings.TrimSpace(e.Message), first, strconv.Itoa(int(count)), e.Name}
	}
	return []string{last, e.Type, e.Reason, target, strings.TrimSpace(e.Message)}
}

func formatEventSource(e *corev1.Event) string {
	component := e.Source.Component
	if component == "" {
		component = e.ReportingController
	}
	instance := e.Source.Host
	if instance == "" {
		instance = e.ReportingInstance
	}
	if instance == "" {
		return component
	}
	return component + ", " + instance
}

// joinHostPort is net.JoinHostPort with a numeric port.
func joinHostPort(host string, port int32) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
