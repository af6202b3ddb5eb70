package admission

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

func validPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: "switchboard", Command: []string{"switchboard", "demo", "http"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "demo"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}}},
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}},
			}},
		},
	}
}

func validDeployment() *appsv1.Deployment {
	p := validPod()
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: p.Spec},
		},
	}
}

func validService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

func validSlice() *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-abcde", Namespace: "default"},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.1.0.5"}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
	}
}

func validIngress() *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "web.example.test",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}
}

func validNetworkPolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "allow-web", Namespace: "default"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(8080))}},
				From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}}},
			}},
		},
	}
}

// vcase is one validation rule: build an object, default it as the store
// does, validate it, and expect a cause at field (or no error at all when
// field is empty) whose message contains detail.
type vcase struct {
	rule   string
	obj    func() cluster.Object
	field  string
	detail string
}

func pod(f func(p *corev1.Pod)) func() cluster.Object {
	return func() cluster.Object { p := validPod(); f(p); return p }
}
func ctr(f func(c *corev1.Container)) func() cluster.Object {
	return pod(func(p *corev1.Pod) { f(&p.Spec.Containers[0]) })
}
func deploy(f func(d *appsv1.Deployment)) func() cluster.Object {
	return func() cluster.Object { d := validDeployment(); f(d); return d }
}
func svc(f func(s *corev1.Service)) func() cluster.Object {
	return func() cluster.Object { s := validService(); f(s); return s }
}
func slice(f func(s *discoveryv1.EndpointSlice)) func() cluster.Object {
	return func() cluster.Object { s := validSlice(); f(s); return s }
}
func ing(f func(i *networkingv1.Ingress)) func() cluster.Object {
	return func() cluster.Object { i := validIngress(); f(i); return i }
}
func netpol(f func(n *networkingv1.NetworkPolicy)) func() cluster.Object {
	return func() cluster.Object { n := validNetworkPolicy(); f(n); return n }
}
func path0(i *networkingv1.Ingress) *networkingv1.HTTPIngressPath {
	return &i.Spec.Rules[0].HTTP.Paths[0]
}

func runCases(t *testing.T, cases []vcase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			obj := c.obj()
			mustDefault(t, cluster.OpCreate, obj, nil)
			err := Validate(cluster.OpCreate, obj, nil)
			checkCause(t, err, c.field, c.detail)
		})
	}
}

func checkCause(t *testing.T, err error, fieldPath, detail string) {
	t.Helper()
	if fieldPath == "" {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want an error at %s, got none", fieldPath)
	}
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want an Invalid error, got %T %v", err, err)
	}
	var causes []string
	for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
		if c.Field == fieldPath && strings.Contains(c.Message, detail) {
			return
		}
		causes = append(causes, fmt.Sprintf("%s: %s", c.Field, c.Message))
	}
	t.Fatalf("no cause at %s containing %q; causes:\n  %s", fieldPath, detail, strings.Join(causes, "\n  "))
}

func TestValidateValidObjects(t *testing.T) {
	runCases(t, []vcase{
		{"a typical pod is valid", func() cluster.Object { return validPod() }, "", ""},
		{"a typical deployment is valid", func() cluster.Object { return validDeployment() }, "", ""},
		{"a typical service is valid", func() cluster.Object { return validService() }, "", ""},
		{"a headless service without selector and ports is valid", svc(func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.Selector, s.Spec.Ports = "None", nil, nil
		}), "", ""},
		{"an ExternalName service is valid", svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.Ports = corev1.ServiceTypeExternalName, "db.example.test.", nil
		}), "", ""},
		{"an endpointslice is valid", func() cluster.Object { return validSlice() }, "", ""},
		{"an ingress is valid", func() cluster.Object { return validIngress() }, "", ""},
		{"a network policy is valid", func() cluster.Object { return validNetworkPolicy() }, "", ""},
		{"a sidecar init container may have probes", pod(func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.Name, c.RestartPolicy = "sidecar", ptr.To(corev1.ContainerRestartPolicyAlways)
			p.Spec.InitContainers = []corev1.Container{c}
		}), "", ""},
		{"secret with stringData and a tls cert", func() cluster.Object {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "default"}, Type: corev1.SecretTypeTLS,
				StringData: map[string]string{"tls.crt": "x", "tls.key": "y"}}
		}, "", ""},
		{"namespace", func() cluster.Object { return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}} }, "", ""},
	})
}

func TestValidateMetadata(t *testing.T) {
	runCases(t, []vcase{
		{"metadata.name: name or generateName is required", pod(func(p *corev1.Pod) { p.Name = "" }), "metadata.name", "name or generateName is required"},
		{"pod names are DNS-1123 subdomains: no upper case", pod(func(p *corev1.Pod) { p.Name = "Web" }), "metadata.name", "a lowercase RFC 1123 subdomain"},
		{"pod names may contain dots", pod(func(p *corev1.Pod) { p.Name = "web.v1" }), "", ""},
		{"service names are DNS-1035 labels: must start with a letter", svc(func(s *corev1.Service) { s.Name = "1web" }), "metadata.name", "a DNS-1035 label must consist of"},
		{"service names may not contain dots", svc(func(s *corev1.Service) { s.Name = "web.v1" }), "metadata.name", "DNS-1035 label"},
		{"namespace names are DNS-1123 labels", func() cluster.Object { return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team.a"}} }, "metadata.name", "must not contain dots"},
		{"metadata.namespace is required for namespaced kinds", pod(func(p *corev1.Pod) { p.Namespace = "" }), "metadata.namespace", "Required value"},
		{"metadata.namespace must be a DNS-1123 label", pod(func(p *corev1.Pod) { p.Namespace = "Team_A" }), "metadata.namespace", "RFC 1123 label"},
		{"label keys are qualified names", pod(func(p *corev1.Pod) { p.Labels["bad key"] = "x" }), "metadata.labels", "name part must consist of"},
		{"label values are at most 63 characters", pod(func(p *corev1.Pod) { p.Labels["app"] = strings.Repeat("a", 64) }), "metadata.labels", "must be no more than 63 bytes"},
		{"annotation keys are qualified names", pod(func(p *corev1.Pod) { p.Annotations = map[string]string{"-bad": "x"} }), "metadata.annotations", "name part must consist of"},
	})
}

func TestValidatePod(t *testing.T) {
	runCases(t, []vcase{
		{"spec.containers: Required value (at least one container)", pod(func(p *corev1.Pod) { p.Spec.Containers = nil }), "spec.containers", "Required value"},
		{"container names are DNS-1123 labels", ctr(func(c *corev1.Container) { c.Name = "App_1" }), "spec.containers[0].name", "RFC 1123 label"},
		{"container names are unique across init and regular containers", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "app", Command: []string{"true"}}}
		}), "spec.containers[0].name", "Duplicate value"},
		{"command is required: Switchboard runs commands and pulls no images", ctr(func(c *corev1.Container) { c.Command = nil }), "spec.containers[0].command", "does not pull images"},
		{"init containers need a command too", pod(func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "init"}} }), "spec.initContainers[0].command", "Required value"},
		{"containerPort must be between 1 and 65535, inclusive", ctr(func(c *corev1.Container) { c.Ports[0].ContainerPort = 70000 }), "spec.containers[0].ports[0].containerPort", "must be between 1 and 65535, inclusive"},
		{"containerPort is required", ctr(func(c *corev1.Container) { c.Ports = append(c.Ports, corev1.ContainerPort{Name: "x"}) }), "spec.containers[0].ports[1].containerPort", "Required value"},
		{"port names are IANA_SVC_NAME: at most 15 characters", ctr(func(c *corev1.Container) { c.Ports[0].Name = "a-very-long-port-name" }), "spec.containers[0].ports[0].name", "must be no more than 15 characters"},
		{"port names are IANA_SVC_NAME: at least one letter", ctr(func(c *corev1.Container) { c.Ports[0].Name = "8080" }), "spec.containers[0].ports[0].name", "must contain at least one letter"},
		{"port names are unique", ctr(func(c *corev1.Container) {
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: "http", ContainerPort: 9090})
		}), "spec.containers[0].ports[1].name", "Duplicate value"},
		{"port protocol: supported values TCP, UDP, SCTP", ctr(func(c *corev1.Container) { c.Ports[0].Protocol = "tcp" }), "spec.containers[0].ports[0].protocol", "Unsupported value"},
		{"env var names: printable ASCII other than '='", ctr(func(c *corev1.Container) { c.Env[0].Name = "A=B" }), "spec.containers[0].env[0].name", "other than '='"},
		{"env valueFrom: may not be specified when value is not empty", ctr(func(c *corev1.Container) {
			c.Env[0].ValueFrom = &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}
		}), "spec.containers[0].env[0].valueFrom", "may not be specified when `value` is not empty"},
		{"env valueFrom: must specify one source", ctr(func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{}}}
		}), "spec.containers[0].env[0].valueFrom", "must specify one of"},
		{"env valueFrom: may not have more than one field specified at a time", ctr(func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
				FieldRef:        &corev1.ObjectFieldSelector{FieldPath: "metadata.name"},
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "k"},
			}}}
		}), "spec.containers[0].env[0].valueFrom", "may not have more than one field specified at a time"},
		{"env fieldRef fieldPath: supported downward API fields", ctr(func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.phase"}}}}
		}), "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", "Unsupported value"},
		{"env fieldRef metadata.labels['key'] is supported", ctr(func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}}}
		}), "", ""},
		{"configMapKeyRef key must be a valid config key", ctr(func(c *corev1.Container) {
			c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "a/b"}}}}
		}), "spec.containers[0].env[0].valueFrom.configMapKeyRef.key", "a valid config key"},
		{"probes: must specify a handler type", ctr(func(c *corev1.Container) { c.ReadinessProbe.HTTPGet = nil }), "spec.containers[0].readinessProbe", "must specify a handler type"},
		{"probes: may not specify more than 1 handler type", ctr(func(c *corev1.Container) {
			c.LivenessProbe.Exec = &corev1.ExecAction{Command: []string{"true"}}
		}), "spec.containers[0].livenessProbe.tcpSocket", "may not specify more than 1 handler type"},
		{"liveness probe successThreshold must be 1", ctr(func(c *corev1.Container) { c.LivenessProbe.SuccessThreshold = 2 }), "spec.containers[0].livenessProbe.successThreshold", "must be 1"},
		{"startup probe successThreshold must be 1", ctr(func(c *corev1.Container) {
			c.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, SuccessThreshold: 3}
		}), "spec.containers[0].startupProbe.successThreshold", "must be 1"},
		{"readiness probe successThreshold may be more than 1", ctr(func(c *corev1.Container) { c.ReadinessProbe.SuccessThreshold = 2 }), "", ""},
		{"probe periodSeconds must be greater than or equal to 0", ctr(func(c *corev1.Container) { c.ReadinessProbe.PeriodSeconds = -1 }), "spec.containers[0].readinessProbe.periodSeconds", "must be greater than or equal to 0"},
		{"probe initialDelaySeconds must be greater than or equal to 0", ctr(func(c *corev1.Container) { c.ReadinessProbe.InitialDelaySeconds = -5 }), "spec.containers[0].readinessProbe.initialDelaySeconds", "must be greater than or equal to 0"},
		{"probe terminationGracePeriodSeconds must not be set for readinessProbes", ctr(func(c *corev1.Container) { c.ReadinessProbe.TerminationGracePeriodSeconds = ptr.To[int64](5) }), "spec.containers[0].readinessProbe.terminationGracePeriodSeconds", "must not be set for readinessProbes"},
		{"httpGet port: a number or an IANA_SVC_NAME", ctr(func(c *corev1.Container) { c.ReadinessProbe.HTTPGet.Port = intstr.FromString("my_port") }), "spec.containers[0].readinessProbe.httpGet.port", "must contain only alpha-numeric characters"},
		{"httpGet port number between 1 and 65535", ctr(func(c *corev1.Container) { c.ReadinessProbe.HTTPGet.Port = intstr.FromInt32(0) }), "spec.containers[0].readinessProbe.httpGet.port", "must be between 1 and 65535"},
		{"httpGet scheme: HTTP or HTTPS", ctr(func(c *corev1.Container) { c.ReadinessProbe.HTTPGet.Scheme = "TCP" }), "spec.containers[0].readinessProbe.httpGet.scheme", "Unsupported value"},
		{"tcpSocket port number between 1 and 65535", ctr(func(c *corev1.Container) { c.LivenessProbe.TCPSocket.Port = intstr.FromInt32(65536) }), "spec.containers[0].livenessProbe.tcpSocket.port", "must be between 1 and 65535"},
		{"grpc port is a number between 1 and 65535", ctr(func(c *corev1.Container) {
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 0}}}
		}), "spec.containers[0].livenessProbe.grpc.port", "must be between 1 and 65535"},
		{"exec probes need a command", ctr(func(c *corev1.Container) {
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{}}}
		}), "spec.containers[0].livenessProbe.exec.command", "Required value"},
		{"init containers without restartPolicy Always may not have probes", pod(func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.Name = "init"
			p.Spec.InitContainers = []corev1.Container{c}
		}), "spec.initContainers[0].readinessProbe", "may not be set for init containers without restartPolicy=Always"},
		{"lifecycle hooks: must specify a handler type", ctr(func(c *corev1.Container) {
			c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{}}
		}), "spec.containers[0].lifecycle.preStop", "must specify a handler type"},
		{"restartPolicy: supported values Always, OnFailure, Never", pod(func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }), "spec.restartPolicy", "Unsupported value"},
		{"hostname is a DNS-1123 label", pod(func(p *corev1.Pod) { p.Spec.Hostname = "web.0" }), "spec.hostname", "must not contain dots"},
		{"subdomain is a DNS-1123 label", pod(func(p *corev1.Pod) { p.Spec.Subdomain = "Web" }), "spec.subdomain", "RFC 1123 label"},
		{"volumeMounts must name a volume", ctr(func(c *corev1.Container) {
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}), "spec.containers[0].volumeMounts[0].name", "Not found"},
		{"resource requests must be less than or equal to limits", ctr(func(c *corev1.Container) {
			c.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
		}), "spec.containers[0].resources.requests[cpu]", "must be less than or equal to cpu limit of 1"},
		{"activeDeadlineSeconds must be at least 1", pod(func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To[int64](0) }), "spec.activeDeadlineSeconds", "must be between 1 and"},
		{"dnsPolicy None requires a nameserver", pod(func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }), "spec.dnsConfig.nameservers", "at least one DNS nameserver"},
	})
}

func TestValidateDeployment(t *testing.T) {
	runCases(t, []vcase{
		{"spec.selector: Required value", deploy(func(d *appsv1.Deployment) { d.Spec.Selector = nil }), "spec.selector", "Required value"},
		{"empty selector is invalid for deployment", deploy(func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }), "spec.selector", "empty selector is invalid for deployment"},
		{"`selector` does not match template `labels`", deploy(func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "api"} }),
			"spec.template.metadata.labels", "`selector` does not match template `labels`"},
		{"selector matchExpressions operator must be valid", deploy(func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Is"}}
		}), "spec.selector.matchExpressions[0].operator", "not a valid selector operator"},
		{"replicas must be greater than or equal to 0", deploy(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](-1) }), "spec.replicas", "must be greater than or equal to 0"},
		{"maxUnavailable may not be 0 when maxSurge is 0", deploy(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromInt32(0)), MaxUnavailable: ptr.To(intstr.FromString("0%"))}
		}), "spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when `maxSurge` is 0"},
		{"maxSurge is an integer or a percentage", deploy(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: ptr.To(intstr.FromString("half"))}
		}), "spec.strategy.rollingUpdate.maxSurge", "a valid percent string"},
		{"maxUnavailable must not be greater than 100%", deploy(func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: ptr.To(intstr.FromString("150%"))}
		}), "spec.strategy.rollingUpdate.maxUnavailable", "must not be greater than 100%"},
		{"rollingUpdate may not be specified when strategy type is Recreate", deploy(func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
		}), "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"},
		{"template restartPolicy: only Always is supported", deploy(func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever }),
			"spec.template.spec.restartPolicy", "Unsupported value: \"Never\": supported values: \"Always\""},
		{"the template's containers are validated under spec.template.spec", deploy(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Command = nil }),
			"spec.template.spec.containers[0].command", "Required value"},
		{"progressDeadlineSeconds must be greater than minReadySeconds", deploy(func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds, d.Spec.ProgressDeadlineSeconds = 30, ptr.To[int32](10)
		}), "spec.progressDeadlineSeconds", "must be greater than minReadySeconds"},
		{"replicaset: `selector` does not match template `labels`", func() cluster.Object {
			d := validDeployment()
			return &appsv1.ReplicaSet{ObjectMeta: d.ObjectMeta, Spec: appsv1.ReplicaSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}, Template: d.Spec.Template}}
		}, "spec.template.metadata.labels", "`selector` does not match template `labels`"},
	})
}

func TestValidateService(t *testing.T) {
	runCases(t, []vcase{
		{"type: supported values ClusterIP, NodePort, LoadBalancer, ExternalName", svc(func(s *corev1.Service) { s.Spec.Type = "Internal" }), "spec.type", "Unsupported value"},
		{"ports are required (unless headless or ExternalName)", svc(func(s *corev1.Service) { s.Spec.Ports = nil }), "spec.ports", "Required value"},
		{"port must be between 1 and 65535, inclusive", svc(func(s *corev1.Service) { s.Spec.Ports[0].Port = 70000 }), "spec.ports[0].port", "Invalid value: 70000: must be between 1 and 65535, inclusive"},
		{"port names are required when there is more than one port", svc(func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80}, {Name: "b", Port: 81}}
		}), "spec.ports[0].name", "Required value"},
		{"port names are unique", svc(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "http", Port: 81})
		}), "spec.ports[1].name", "Duplicate value"},
		{"(port, protocol) pairs are unique", svc(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "alt", Port: 80})
		}), "spec.ports[1]", "Duplicate value: \"80/TCP\""},
		{"the same port with another protocol is fine", svc(func(s *corev1.Service) {
			s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "dns", Port: 80, Protocol: corev1.ProtocolUDP})
		}), "", ""},
		{"targetPort is a number or an IANA_SVC_NAME", svc(func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("HTTP_PORT") }), "spec.ports[0].targetPort", "must contain only alpha-numeric"},
		{"nodePort may not be used when type is ClusterIP", svc(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }), "spec.ports[0].nodePort", "may not be used when `type` is 'ClusterIP'"},
		{"nodePort is fine for NodePort services", svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30080
		}), "", ""},
		{"clusterIP must be empty, 'None', or a valid IP address", svc(func(s *corev1.Service) { s.Spec.ClusterIP = "10.96.0.300" }), "spec.clusterIP", "must be empty, 'None', or a valid IP address"},
		{"clusterIP may not be 'None' for NodePort services", svc(func(s *corev1.Service) { s.Spec.Type, s.Spec.ClusterIP = corev1.ServiceTypeNodePort, "None" }), "spec.clusterIP", "may not be set to 'None' for NodePort services"},
		{"externalName is required for ExternalName services", svc(func(s *corev1.Service) { s.Spec.Type, s.Spec.Ports = corev1.ServiceTypeExternalName, nil }), "spec.externalName", "Required value"},
		{"externalName is a DNS-1123 subdomain", svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, "db_primary.example"
		}), "spec.externalName", "RFC 1123 subdomain"},
		{"ExternalName services may not have a clusterIP", svc(func(s *corev1.Service) {
			s.Spec.Type, s.Spec.ExternalName, s.Spec.ClusterIP = corev1.ServiceTypeExternalName, "db.example.test", "10.96.0.10"
		}), "spec.clusterIP", "may not be set for ExternalName services"},
		{"sessionAffinityConfig timeoutSeconds between 1 and 86400", svc(func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](86401)}}
		}), "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "must be greater than 0 and less than or equal to 86400"},
		{"sessionAffinity: supported values ClientIP, None", svc(func(s *corev1.Service) { s.Spec.SessionAffinity = "Cookie" }), "spec.sessionAffinity", "Unsupported value"},
		{"selector values are label values", svc(func(s *corev1.Service) { s.Spec.Selector["app"] = "web server" }), "spec.selector", "a valid label must be"},
		{"externalTrafficPolicy may only be set for externally-accessible services", svc(func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}), "spec.externalTrafficPolicy", "externally-accessible"},
		{"externalIPs are IP addresses", svc(func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"example.com"} }), "spec.externalIPs[0]", "must be a valid IP address"},
	})
}

func TestValidateEndpointSlice(t *testing.T) {
	runCases(t, []vcase{
		{"addressType: supported values IPv4, IPv6, FQDN", slice(func(s *discoveryv1.EndpointSlice) { s.AddressType = "IP" }), "addressType", "Unsupported value"},
		{"addresses must be valid for the addressType (IPv4)", slice(func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"fd00::1"} }), "endpoints[0].addresses[0]", "must be an IPv4 address"},
		{"addresses must be IP addresses", slice(func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = []string{"web.local"} }), "endpoints[0].addresses[0]", "must be a valid IP address"},
		{"an endpoint must contain at least 1 address", slice(func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Addresses = nil }), "endpoints[0].addresses", "must contain at least 1 address"},
		{"a slice holds at most 1000 endpoints", slice(func(s *discoveryv1.EndpointSlice) {
			for range 1000 {
				s.Endpoints = append(s.Endpoints, s.Endpoints[0])
			}
		}), "endpoints", "must have at most 1000 items"},
		{"FQDN addresses are fully qualified domain names", slice(func(s *discoveryv1.EndpointSlice) {
			s.AddressType, s.Endpoints[0].Addresses = discoveryv1.AddressTypeFQDN, []string{"db"}
		}), "endpoints[0].addresses[0]", "should be a domain with at least two segments"},
		{"port names are unique", slice(func(s *discoveryv1.EndpointSlice) {
			s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To("http"), Port: ptr.To[int32](9090)})
		}), "ports[1].name", "Duplicate value"},
		{"port numbers between 1 and 65535", slice(func(s *discoveryv1.EndpointSlice) { s.Ports[0].Port = ptr.To[int32](0) }), "ports[0].port", "must be between 1 and 65535"},
		{"endpoint hostname is a DNS-1123 label", slice(func(s *discoveryv1.EndpointSlice) { s.Endpoints[0].Hostname = ptr.To("web.0") }), "endpoints[0].hostname", "must not contain dots"},
	})
}

func TestValidateIngress(t *testing.T) {
	runCases(t, []vcase{
		{"host must be a DNS name, not an IP address", ing(func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "10.0.0.1" }), "spec.rules[0].host", "must be a DNS name, not an IP address"},
		{"a wildcard host is fine as the first label", ing(func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "*.example.test" }), "", ""},
		{"the wildcard character '*' must appear by itself as the first DNS label", ing(func(i *networkingv1.Ingress) { i.Spec.Rules[0].Host = "web.*.example.test" }),
			"spec.rules[0].host", "wildcard DNS-1123 subdomain must start with '*.'"},
		{"pathType must be specified", ing(func(i *networkingv1.Ingress) { path0(i).PathType = nil }), "spec.rules[0].http.paths[0].pathType", "pathType must be specified"},
		{"Prefix paths must be absolute", ing(func(i *networkingv1.Ingress) { path0(i).Path = "api" }), "spec.rules[0].http.paths[0].path", "must be an absolute path"},
		{"Exact paths must not contain '//'", ing(func(i *networkingv1.Ingress) {
			path0(i).Path, path0(i).PathType = "/a//b", ptr.To(networkingv1.PathTypeExact)
		}), "spec.rules[0].http.paths[0].path", "must not contain '//'"},
		{"backend: resource or service backend is required", ing(func(i *networkingv1.Ingress) { path0(i).Backend = networkingv1.IngressBackend{} }),
			"spec.rules[0].http.paths[0].backend", "resource or service backend is required"},
		{"backend: cannot set both resource and service backends", ing(func(i *networkingv1.Ingress) {
			path0(i).Backend.Resource = &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}
		}), "spec.rules[0].http.paths[0].backend", "cannot set both resource and service backends"},
		{"service port: cannot set both port name & port number", ing(func(i *networkingv1.Ingress) { path0(i).Backend.Service.Port.Name = "http" }),
			"spec.rules[0].http.paths[0].backend.service.port", "cannot set both port name & port number"},
		{"service port: port name or number is required", ing(func(i *networkingv1.Ingress) { path0(i).Backend.Service.Port = networkingv1.ServiceBackendPort{} }),
			"spec.rules[0].http.paths[0].backend.service.port", "port name or number is required"},
		{"either defaultBackend or rules must be specified", ing(func(i *networkingv1.Ingress) { i.Spec.Rules = nil }), "spec", "either `defaultBackend` or `rules` must be specified"},
	})
}

func TestValidateNetworkPolicyAndConfig(t *testing.T) {
	runCases(t, []vcase{
		{"policyTypes: supported values Ingress, Egress", netpol(func(n *networkingv1.NetworkPolicy) { n.Spec.PolicyTypes = []networkingv1.PolicyType{"Both"} }), "spec.policyTypes[0]", "Unsupported value"},
		{"ipBlock cidr must be a CIDR", netpol(func(n *networkingv1.NetworkPolicy) { n.Spec.Ingress[0].From[0].IPBlock.CIDR = "10.0.0.1" }), "spec.ingress[0].from[0].ipBlock.cidr", "must be a valid CIDR value"},
		{"ipBlock except must be a strict subset of cidr", netpol(func(n *networkingv1.NetworkPolicy) {
			n.Spec.Ingress[0].From[0].IPBlock.Except = []string{"192.168.0.0/16"}
		}),
			"spec.ingress[0].from[0].ipBlock.except[0]", "must be a strict subset of `cidr`"},
		{"endPort must be greater than or equal to port", netpol(func(n *networkingv1.NetworkPolicy) { n.Spec.Ingress[0].Ports[0].EndPort = ptr.To[int32](80) }),
			"spec.ingress[0].ports[0].endPort", "must be greater than or equal to `port`"},
		{"configmap keys: alphanumeric characters, '-', '_' or '.'", func() cluster.Object {
			return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"app config": "x"}}
		}, "data[app config]", "a valid config key must consist of alphanumeric characters"},
		{"secret keys: alphanumeric characters, '-', '_' or '.'", func() cluster.Object {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"}, Data: map[string][]byte{"../x": nil}}
		}, "data[../x]", "a valid config key"},
		{"kubernetes.io/tls secrets need tls.key", func() cluster.Object {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": nil}}
		}, "data[tls.key]", "Required value"},
	})
}

// vupdate is a rule about updates: old is stored, new is written.
type vupdate struct {
	rule   string
	old    func() cluster.Object
	change func(cluster.Object)
	field  string
	detail string
}

func TestValidateUpdate(t *testing.T) {
	cases := []vupdate{
		{"pod updates may change spec.containers[*].image",
			func() cluster.Object { return validPod() },
			func(o cluster.Object) { o.(*corev1.Pod).Spec.Containers[0].Image = "switchboard:v2" }, "", ""},
		{"pod updates may change metadata (labels)",
			func() cluster.Object { return validPod() },
			func(o cluster.Object) { o.(*corev1.Pod).Labels["tier"] = "front" }, "", ""},
		{"binding an unbound pod (spec.nodeName) is allowed",
			func() cluster.Object { return validPod() },
			func(o cluster.Object) { o.(*corev1.Pod).Spec.NodeName = "node-1" }, "", ""},
		{"pod updates may not change fields other than the image, activeDeadlineSeconds, tolerations",
			func() cluster.Object { return validPod() },
			func(o cluster.Object) { o.(*corev1.Pod).Spec.Containers[0].Command = []string{"other"} },
			"spec", "pod updates may not change fields other than"},
		{"the message names the changed field",
			func() cluster.Object { return validPod() },
			func(o cluster.Object) { o.(*corev1.Pod).Spec.Containers[0].Ports[0].ContainerPort = 9090 },
			"spec", "changed: spec.containers[0].ports[0].containerPort"},
		{"moving a bound pod to another node is not allowed",
			func() cluster.Object { p := validPod(); p.Spec.NodeName = "node-1"; return p },
			func(o cluster.Object) { o.(*corev1.Pod).Spec.NodeName = "node-2" }, "spec", "changed: spec.nodeName"},
		{"deployment spec.selector is immutable",
			func() cluster.Object { return validDeployment() },
			func(o cluster.Object) {
				d := o.(*appsv1.Deployment)
				d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "v": "2"}}
				d.Spec.Template.Labels["v"] = "2"
			}, "spec.selector", "field is immutable"},
		{"deployment template changes are fine",
			func() cluster.Object { return validDeployment() },
			func(o cluster.Object) {
				o.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Command = []string{"new"}
			}, "", ""},
		{"service clusterIP is immutable",
			func() cluster.Object { s := validService(); s.Spec.ClusterIP = "10.96.0.20"; return s },
			func(o cluster.Object) {
				s := o.(*corev1.Service)
				s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.21", nil
			}, "spec.clusterIP", "field is immutable"},
		{"re-applying a service without clusterIP keeps the allocated one",
			func() cluster.Object { s := validService(); s.Spec.ClusterIP = "10.96.0.20"; return s },
			func(o cluster.Object) { s := o.(*corev1.Service); s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil }, "", ""},
		{"clusterIP may change to and from ExternalName",
			func() cluster.Object { s := validService(); s.Spec.ClusterIP = "10.96.0.20"; return s },
			func(o cluster.Object) {
				s := o.(*corev1.Service)
				s.Spec.Type, s.Spec.ExternalName, s.Spec.Ports = corev1.ServiceTypeExternalName, "db.example.test", nil
			}, "", ""},
		{"endpointslice addressType is immutable",
			func() cluster.Object { return validSlice() },
			func(o cluster.Object) {
				s := o.(*discoveryv1.EndpointSlice)
				s.AddressType, s.Endpoints[0].Addresses = discoveryv1.AddressTypeIPv6, []string{"fd00::1"}
			}, "addressType", "field is immutable"},
		{"an immutable configmap keeps its data",
			func() cluster.Object {
				return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Immutable: ptr.To(true), Data: map[string]string{"a": "1"}}
			},
			func(o cluster.Object) { o.(*corev1.ConfigMap).Data["a"] = "2" }, "data", "field is immutable when `immutable` is set"},
	}
	for _, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			old := c.old()
			mustDefault(t, cluster.OpCreate, old, nil)
			if err := Validate(cluster.OpCreate, old, nil); err != nil {
				t.Fatalf("old object invalid: %v", err)
			}
			obj := old.DeepCopyObject().(cluster.Object)
			c.change(obj)
			mustDefault(t, cluster.OpUpdate, obj, old)
			checkCause(t, Validate(cluster.OpUpdate, obj, old), c.field, c.detail)
		})
	}
}

func TestValidateIgnoresDelete(t *testing.T) {
	p := validPod()
	p.Name = "Not Valid"
	if err := Validate(cluster.OpDelete, nil, p); err != nil {
		t.Errorf("deletions are never refused: %v", err)
	}
}
