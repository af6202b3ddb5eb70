package admission

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

func mustDefault(t *testing.T, op cluster.Operation, obj, old cluster.Object) {
	t.Helper()
	if err := Default(op, obj, old); err != nil {
		t.Fatalf("Default: %v", err)
	}
}

func TestDefaultPod(t *testing.T) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Command: []string{"true"}}},
			Containers: []corev1.Container{{
				Name: "app", Image: "demo:1.0", Command: []string{"demo"},
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				Env: []corev1.EnvVar{{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}},
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9090}}, PeriodSeconds: 2},
				Lifecycle:      &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}},
			}},
			Volumes: []corev1.Volume{{Name: "scratch"}, {Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}},
		},
	}
	mustDefault(t, cluster.OpCreate, p, nil)
	c := p.Spec.Containers[0]
	checks := []struct {
		rule string
		ok   bool
	}{
		{"SetDefaults_PodSpec: restartPolicy Always", p.Spec.RestartPolicy == corev1.RestartPolicyAlways},
		{"SetDefaults_PodSpec: dnsPolicy ClusterFirst", p.Spec.DNSPolicy == corev1.DNSClusterFirst},
		{"SetDefaults_PodSpec: terminationGracePeriodSeconds 30", ptr.Deref(p.Spec.TerminationGracePeriodSeconds, 0) == 30},
		{"SetDefaults_PodSpec: schedulerName default-scheduler", p.Spec.SchedulerName == "default-scheduler"},
		{"SetDefaults_PodSpec: securityContext {}", p.Spec.SecurityContext != nil},
		{"SetDefaults_Pod: enableServiceLinks true", ptr.Deref(p.Spec.EnableServiceLinks, false)},
		{"SetDefaults_Container: imagePullPolicy IfNotPresent for a tagged image", c.ImagePullPolicy == corev1.PullIfNotPresent},
		{"SetDefaults_Container: terminationMessagePath /dev/termination-log", c.TerminationMessagePath == "/dev/termination-log"},
		{"SetDefaults_Container: terminationMessagePolicy File", c.TerminationMessagePolicy == corev1.TerminationMessageReadFile},
		{"init containers are defaulted too", p.Spec.InitContainers[0].TerminationMessagePolicy == corev1.TerminationMessageReadFile},
		{"ContainerPort protocol defaults to TCP", c.Ports[0].Protocol == corev1.ProtocolTCP},
		{"SetDefaults_ObjectFieldSelector: apiVersion v1", c.Env[0].ValueFrom.FieldRef.APIVersion == "v1"},
		{"SetDefaults_Probe: timeoutSeconds 1", c.LivenessProbe.TimeoutSeconds == 1},
		{"SetDefaults_Probe: periodSeconds 10", c.LivenessProbe.PeriodSeconds == 10},
		{"SetDefaults_Probe: a set periodSeconds is kept", c.ReadinessProbe.PeriodSeconds == 2},
		{"SetDefaults_Probe: successThreshold 1", c.LivenessProbe.SuccessThreshold == 1},
		{"SetDefaults_Probe: failureThreshold 3", c.LivenessProbe.FailureThreshold == 3},
		{"SetDefaults_HTTPGetAction: path /", c.LivenessProbe.HTTPGet.Path == "/"},
		{"SetDefaults_HTTPGetAction: scheme HTTP", c.LivenessProbe.HTTPGet.Scheme == corev1.URISchemeHTTP},
		{"GRPCAction service defaults to \"\"", c.ReadinessProbe.GRPC.Service != nil && *c.ReadinessProbe.GRPC.Service == ""},
		{"lifecycle httpGet is defaulted like a probe's", c.Lifecycle.PreStop.HTTPGet.Path == "/" && c.Lifecycle.PreStop.HTTPGet.Scheme == corev1.URISchemeHTTP},
		{"SetDefaults_Pod: requests default to limits", c.Resources.Requests.Cpu().String() == "500m" && c.Resources.Requests.Memory().String() == "64Mi"},
		{"SetDefaults_Volume: no source means emptyDir", p.Spec.Volumes[0].EmptyDir != nil},
		{"SetDefaults_ConfigMapVolumeSource: defaultMode 0644", ptr.Deref(p.Spec.Volumes[1].ConfigMap.DefaultMode, 0) == 0o644},
		{"PrepareForCreate: status.phase Pending", p.Status.Phase == corev1.PodPending},
		{"PrepareForCreate: status.qosClass (the init container has no limits: Burstable)", p.Status.QOSClass == corev1.PodQOSBurstable},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not applied", c.rule)
		}
	}

	// Defaulting is idempotent: a second pass (an UPDATE) changes nothing.
	again := p.DeepCopy()
	mustDefault(t, cluster.OpUpdate, again, p)
	if !equalJSON(t, p, again) {
		t.Errorf("defaulting a defaulted pod changed it")
	}
}

func TestDefaultImagePullPolicy(t *testing.T) {
	// "PullPolicy defaults to Always if :latest tag is specified, or
	// IfNotPresent otherwise"; no tag means :latest.
	cases := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"registry.local:5000/nginx", corev1.PullAlways},
		{"registry.local:5000/nginx:1.27", corev1.PullIfNotPresent},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
		{"", corev1.PullIfNotPresent},
	}
	for _, c := range cases {
		t.Run(c.image, func(t *testing.T) {
			p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: c.image}}}}
			mustDefault(t, cluster.OpCreate, p, nil)
			if got := p.Spec.Containers[0].ImagePullPolicy; got != c.want {
				t.Errorf("image %q: imagePullPolicy %s, want %s", c.image, got, c.want)
			}
		})
	}
}

func TestPodQOSClass(t *testing.T) {
	rl := func(kv ...string) corev1.ResourceList {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	cases := []struct {
		name       string
		containers []corev1.ResourceRequirements
		want       corev1.PodQOSClass
	}{
		{"no requests or limits in any container: BestEffort", []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"only non-cpu/memory resources: BestEffort", []corev1.ResourceRequirements{{Requests: rl("ephemeral-storage", "1Gi")}}, corev1.PodQOSBestEffort},
		{"every container has cpu and memory limits equal to requests: Guaranteed",
			[]corev1.ResourceRequirements{{Limits: rl("cpu", "1", "memory", "1Gi"), Requests: rl("cpu", "1", "memory", "1Gi")}}, corev1.PodQOSGuaranteed},
		{"limits only (requests default to them): Guaranteed", []corev1.ResourceRequirements{{Limits: rl("cpu", "1", "memory", "1Gi")}}, corev1.PodQOSGuaranteed},
		{"requests lower than limits: Burstable",
			[]corev1.ResourceRequirements{{Limits: rl("cpu", "1", "memory", "1Gi"), Requests: rl("cpu", "500m", "memory", "1Gi")}}, corev1.PodQOSBurstable},
		{"a cpu request only: Burstable", []corev1.ResourceRequirements{{Requests: rl("cpu", "100m")}}, corev1.PodQOSBurstable},
		{"one container without limits: Burstable",
			[]corev1.ResourceRequirements{{Limits: rl("cpu", "1", "memory", "1Gi")}, {}}, corev1.PodQOSBurstable},
		{"memory limit missing: Burstable", []corev1.ResourceRequirements{{Limits: rl("cpu", "1")}}, corev1.PodQOSBurstable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &corev1.Pod{}
			for i, r := range c.containers {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: string(rune('a' + i)), Resources: r})
			}
			mustDefault(t, cluster.OpCreate, p, nil)
			if p.Status.QOSClass != c.want {
				t.Errorf("qosClass %s, want %s", p.Status.QOSClass, c.want)
			}
		})
	}
}

func TestDefaultDeploymentAndReplicaSet(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Command: []string{"x"}}}}}}}
	mustDefault(t, cluster.OpCreate, d, nil)
	ru := d.Spec.Strategy.RollingUpdate
	checks := []struct {
		rule string
		ok   bool
	}{
		{"SetDefaults_Deployment: replicas 1", ptr.Deref(d.Spec.Replicas, 0) == 1},
		{"SetDefaults_Deployment: strategy RollingUpdate", d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType},
		{"SetDefaults_Deployment: maxUnavailable 25%", ru != nil && ru.MaxUnavailable.String() == "25%"},
		{"SetDefaults_Deployment: maxSurge 25%", ru != nil && ru.MaxSurge.String() == "25%"},
		{"SetDefaults_Deployment: revisionHistoryLimit 10", ptr.Deref(d.Spec.RevisionHistoryLimit, 0) == 10},
		{"SetDefaults_Deployment: progressDeadlineSeconds 600", ptr.Deref(d.Spec.ProgressDeadlineSeconds, 0) == 600},
		{"the template's pod spec is defaulted", d.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyAlways &&
			d.Spec.Template.Spec.Containers[0].TerminationMessagePath != ""},
		{"SetDefaults_Pod parts stay off templates (enableServiceLinks)", d.Spec.Template.Spec.EnableServiceLinks == nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not applied", c.rule)
		}
	}
	recreate := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}}}
	mustDefault(t, cluster.OpCreate, recreate, nil)
	if recreate.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("Recreate strategy got rollingUpdate defaults")
	}
	rs := &appsv1.ReplicaSet{}
	mustDefault(t, cluster.OpCreate, rs, nil)
	if ptr.Deref(rs.Spec.Replicas, 0) != 1 || rs.Spec.Template.Spec.DNSPolicy != corev1.DNSClusterFirst {
		t.Errorf("SetDefaults_ReplicaSet: replicas 1 and template defaults not applied: %+v", rs.Spec)
	}
}

func TestDefaultService(t *testing.T) {
	cases := []struct {
		name  string
		spec  corev1.ServiceSpec
		check func(s *corev1.ServiceSpec) bool
	}{
		{"type defaults to ClusterIP", corev1.ServiceSpec{}, func(s *corev1.ServiceSpec) bool { return s.Type == corev1.ServiceTypeClusterIP }},
		{"sessionAffinity defaults to None", corev1.ServiceSpec{}, func(s *corev1.ServiceSpec) bool {
			return s.SessionAffinity == corev1.ServiceAffinityNone && s.SessionAffinityConfig == nil
		}},
		{"ClientIP affinity gets timeoutSeconds 10800", corev1.ServiceSpec{SessionAffinity: corev1.ServiceAffinityClientIP}, func(s *corev1.ServiceSpec) bool {
			return s.SessionAffinityConfig != nil && *s.SessionAffinityConfig.ClientIP.TimeoutSeconds == 10800
		}},
		{"port protocol TCP and targetPort = port", corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}, func(s *corev1.ServiceSpec) bool {
			return s.Ports[0].Protocol == corev1.ProtocolTCP && s.Ports[0].TargetPort == intstr.FromInt32(80)
		}},
		{"a named targetPort is kept", corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}, func(s *corev1.ServiceSpec) bool {
			return s.Ports[0].TargetPort == intstr.FromString("http")
		}},
		{"internalTrafficPolicy Cluster", corev1.ServiceSpec{}, func(s *corev1.ServiceSpec) bool {
			return s.InternalTrafficPolicy != nil && *s.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyCluster
		}},
		{"externalTrafficPolicy Cluster for NodePort", corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort}, func(s *corev1.ServiceSpec) bool {
			return s.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyCluster
		}},
		{"no externalTrafficPolicy for ClusterIP", corev1.ServiceSpec{}, func(s *corev1.ServiceSpec) bool { return s.ExternalTrafficPolicy == "" }},
		{"ipFamilyPolicy SingleStack, ipFamilies [IPv4]", corev1.ServiceSpec{Selector: map[string]string{"a": "b"}}, func(s *corev1.ServiceSpec) bool {
			return *s.IPFamilyPolicy == corev1.IPFamilyPolicySingleStack && len(s.IPFamilies) == 1 && s.IPFamilies[0] == corev1.IPv4Protocol
		}},
		{"headless without selector defaults to RequireDualStack (service allocator special case)", corev1.ServiceSpec{ClusterIP: "None"}, func(s *corev1.ServiceSpec) bool {
			return *s.IPFamilyPolicy == corev1.IPFamilyPolicyRequireDualStack && len(s.IPFamilies) == 2 && s.ClusterIPs[0] == "None"
		}},
		{"an IPv6 clusterIP infers ipFamilies [IPv6]", corev1.ServiceSpec{ClusterIP: "fd00::10"}, func(s *corev1.ServiceSpec) bool {
			return s.IPFamilies[0] == corev1.IPv6Protocol && s.ClusterIPs[0] == "fd00::10"
		}},
		{"ExternalName gets no IP family fields", corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}, func(s *corev1.ServiceSpec) bool {
			return s.IPFamilyPolicy == nil && s.IPFamilies == nil && s.InternalTrafficPolicy == nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &corev1.Service{Spec: *c.spec.DeepCopy()}
			mustDefault(t, cluster.OpCreate, s, nil)
			if !c.check(&s.Spec) {
				t.Errorf("got spec %+v", s.Spec)
			}
		})
	}
}

// patchAllocatedValues: "If they resubmit that same YAML, we want it to
// succeed" — the allocated values are kept.
func TestDefaultServiceUpdateKeepsAllocatedValues(t *testing.T) {
	old := &corev1.Service{Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
		Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}},
	}}
	mustDefault(t, cluster.OpCreate, old, nil)
	old.Spec.ClusterIP, old.Spec.ClusterIPs = "10.96.0.20", []string{"10.96.0.20"}
	old.Spec.Ports[0].NodePort, old.Spec.Ports[1].NodePort = 30080, 30443
	old.Spec.HealthCheckNodePort = 31000

	manifest := &corev1.Service{Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
		Ports: []corev1.ServicePort{{Name: "http", Port: 8080}, {Name: "https", Port: 443}},
	}}
	mustDefault(t, cluster.OpUpdate, manifest, old)
	s := manifest.Spec
	if s.ClusterIP != "10.96.0.20" || len(s.ClusterIPs) != 1 || s.ClusterIPs[0] != "10.96.0.20" {
		t.Errorf("clusterIP(s) not kept: %q %v", s.ClusterIP, s.ClusterIPs)
	}
	if s.Ports[0].NodePort != 30080 || s.Ports[1].NodePort != 30443 {
		t.Errorf("nodePorts (matched by port name) not kept: %v", s.Ports)
	}
	if s.HealthCheckNodePort != 31000 {
		t.Errorf("healthCheckNodePort not kept: %d", s.HealthCheckNodePort)
	}
	if len(s.IPFamilies) != 1 || s.IPFamilies[0] != corev1.IPv4Protocol {
		t.Errorf("ipFamilies: %v", s.IPFamilies)
	}

	// Switching to ClusterIP drops the node ports the client left as they
	// were (dropTypeDependentFields), and keeps the cluster IP.
	toClusterIP := old.DeepCopy()
	toClusterIP.Spec.Type = corev1.ServiceTypeClusterIP
	toClusterIP.Spec.ExternalTrafficPolicy = ""
	mustDefault(t, cluster.OpUpdate, toClusterIP, old)
	if toClusterIP.Spec.Ports[0].NodePort != 0 || toClusterIP.Spec.HealthCheckNodePort != 0 || toClusterIP.Spec.ClusterIP != "10.96.0.20" {
		t.Errorf("type change to ClusterIP: %+v", toClusterIP.Spec)
	}
}

func TestDefaultOtherKinds(t *testing.T) {
	es := &discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}}}
	mustDefault(t, cluster.OpCreate, es, nil)
	if es.Ports[0].Name == nil || *es.Ports[0].Name != "" || es.Ports[0].Protocol == nil || *es.Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("SetDefaults_EndpointPort: name \"\" and protocol TCP: %+v", es.Ports[0])
	}

	sec := &corev1.Secret{StringData: map[string]string{"password": "s3cret"}}
	mustDefault(t, cluster.OpCreate, sec, nil)
	if sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("SetDefaults_Secret: type Opaque, got %q", sec.Type)
	}
	if string(sec.Data["password"]) != "s3cret" || sec.StringData != nil {
		t.Errorf("stringData is merged into data on write: %+v", sec)
	}

	np := &networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(80))}}}},
		Egress:  []networkingv1.NetworkPolicyEgressRule{{}},
	}}
	mustDefault(t, cluster.OpCreate, np, nil)
	if len(np.Spec.PolicyTypes) != 2 || np.Spec.PolicyTypes[0] != networkingv1.PolicyTypeIngress || np.Spec.PolicyTypes[1] != networkingv1.PolicyTypeEgress {
		t.Errorf("SetDefaults_NetworkPolicy: Ingress, plus Egress when egress rules exist: %v", np.Spec.PolicyTypes)
	}
	if p := np.Spec.Ingress[0].Ports[0].Protocol; p == nil || *p != corev1.ProtocolTCP {
		t.Errorf("SetDefaults_NetworkPolicyPort: protocol TCP")
	}
	ingressOnly := &networkingv1.NetworkPolicy{}
	mustDefault(t, cluster.OpCreate, ingressOnly, nil)
	if len(ingressOnly.Spec.PolicyTypes) != 1 {
		t.Errorf("a policy without egress rules implies only Ingress: %v", ingressOnly.Spec.PolicyTypes)
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}
	mustDefault(t, cluster.OpCreate, ns, nil)
	if ns.Status.Phase != corev1.NamespaceActive || ns.Labels[corev1.LabelMetadataName] != "team-a" {
		t.Errorf("SetDefaults_Namespace: phase Active and kubernetes.io/metadata.name label: %+v", ns)
	}

	// Deletions are not defaulted.
	if err := Default(cluster.OpDelete, nil, ns); err != nil {
		t.Errorf("Default on DELETE: %v", err)
	}
}
