package cli

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Fixtures built from k8s.io/api types, as the node would store them.

func ago(now time.Time, d time.Duration) metav1.Time {
	return metav1.NewTime(now.Add(-d).Truncate(time.Second))
}

// webPod is a running pod of the web deployment: one container with
// liveness and readiness probes, restarted 3 times, the last time 12s
// before now after a liveness failure.
func webPod(now time.Time) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-7d4b9c-x2x9z", Namespace: "default", UID: "uid-web-pod",
			Labels:            map[string]string{"app": "web", "pod-template-hash": "7d4b9c"},
			CreationTimestamp: ago(now, 20*time.Minute+30*time.Second),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-7d4b9c", UID: "uid-web-rs-7d4b9c", Controller: ptr.To(true),
			}},
		},
		Spec: corev1.PodSpec{
			NodeName: "node-1",
			Containers: []corev1.Container{{
				Name:    "web",
				Image:   "switchboard",
				Command: []string{"switchboard", "demo", "http"},
				Args:    []string{"--listen=:8080"},
				Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{
					{Name: "GREETING", Value: "hello"},
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
				},
				LivenessProbe: &corev1.Probe{
					ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
					TimeoutSeconds:   1,
					PeriodSeconds:    10,
					SuccessThreshold: 1,
					FailureThreshold: 3,
				},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
					InitialDelaySeconds: 2,
					TimeoutSeconds:      1,
					PeriodSeconds:       5,
					SuccessThreshold:    1,
					FailureThreshold:    3,
				},
			}},
		},
		Status: corev1.PodStatus{
			Phase:     corev1.PodRunning,
			HostIP:    "127.0.0.1",
			PodIP:     "127.1.0.5",
			PodIPs:    []corev1.PodIP{{IP: "127.1.0.5"}},
			StartTime: ptr.To(ago(now, 20*time.Minute)),
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue},
			},
			ContainerStatuses: []corev1.ContainerStatus{{
				Name: "web", Ready: true, RestartCount: 3, Image: "switchboard", ContainerID: "switchboard://web-7d4b9c-x2x9z/web/4",
				Started: ptr.To(true),
				State:   corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(now, 11*time.Second)}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Signal: 9, Reason: "Error", Message: "liveness probe failed",
					StartedAt: ago(now, 2*time.Minute), FinishedAt: ago(now, 12*time.Second),
				}},
			}},
		},
	}
}

func webService(now time.Time) *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "default", UID: "uid-web-svc",
			CreationTimestamp: ago(now, 20*time.Minute+30*time.Second),
		},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			Selector:        map[string]string{"app": "web"},
			ClusterIP:       "10.96.0.20",
			ClusterIPs:      []string{"10.96.0.20"},
			IPFamilies:      []corev1.IPFamily{corev1.IPv4Protocol},
			SessionAffinity: corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
				{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

func webSlice(now time.Time) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-abc12", Namespace: "default", UID: "uid-web-eps",
			Labels:            map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
			CreationTimestamp: ago(now, 20*time.Minute+30*time.Second),
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)},
			{Name: ptr.To("metrics"), Port: ptr.To[int32](9090), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"127.1.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To("node-1"),
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-7d4b9c-x2x9z", Namespace: "default"}},
			{Addresses: []string{"127.1.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}, NodeName: ptr.To("node-1"),
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "web-7d4b9c-q8w2e", Namespace: "default"}},
		},
	}
}

func webDeployment(now time.Time) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "default", UID: "uid-web-deploy",
			CreationTimestamp: ago(now, 20*time.Minute+30*time.Second),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(1)), MaxSurge: ptr.To(intstr.FromString("25%")),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "web", Image: "switchboard", Command: []string{"switchboard", "demo", "http"}},
					{Name: "sidecar", Image: "busybox"},
				}},
			},
		},
		Status: appsv1.DeploymentStatus{
			Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
			},
		},
	}
}

// webReplicaSets are the deployment's current replica set (same template
// plus the pod-template-hash label) and an older one.
func webReplicaSets(now time.Time) []*appsv1.ReplicaSet {
	d := webDeployment(now)
	mk := func(hash string, replicas int32, tmpl corev1.PodTemplateSpec, age time.Duration) *appsv1.ReplicaSet {
		tmpl = *tmpl.DeepCopy()
		tmpl.Labels["pod-template-hash"] = hash
		return &appsv1.ReplicaSet{
			TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"},
			ObjectMeta: metav1.ObjectMeta{
				Name: "web-" + hash, Namespace: "default", UID: types.UID("uid-web-rs-" + hash),
				Labels:            map[string]string{"app": "web", "pod-template-hash": hash},
				CreationTimestamp: ago(now, age),
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: d.UID, Controller: ptr.To(true),
				}},
			},
			Spec: appsv1.ReplicaSetSpec{
				Replicas: ptr.To(replicas),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": hash}},
				Template: tmpl,
			},
			Status: appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: replicas},
		}
	}
	old := d.Spec.Template.DeepCopy()
	old.Spec.Containers[0].Image = "switchboard:old"
	return []*appsv1.ReplicaSet{
		mk("7d4b9c", 3, d.Spec.Template, 10*time.Minute+30*time.Second),
		mk("5f6a7b", 0, *old, 20*time.Minute+30*time.Second),
	}
}

// podEvents are the kubelet's events about webPod: a liveness failure
// seen 3 times (aggregated, as client-go's recorder does), the restart,
// and one event about another object that must not show.
func podEvents(now time.Time) []*corev1.Event {
	ref := corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-7d4b9c-x2x9z", UID: "uid-web-pod", FieldPath: "spec.containers{web}"}
	ev := func(name, typ, reason, msg string, count int32, first, last time.Duration, ref corev1.ObjectReference) *corev1.Event {
		return &corev1.Event{
			TypeMeta:       metav1.TypeMeta{APIVersion: "v1", Kind: "Event"},
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(now, first)},
			InvolvedObject: ref,
			Type:           typ, Reason: reason, Message: msg, Count: count,
			FirstTimestamp: ago(now, first), LastTimestamp: ago(now, last),
			Source: corev1.EventSource{Component: "kubelet", Host: "node-1"},
		}
	}
	other := ref
	other.Name, other.UID = "web-7d4b9c-q8w2e", "uid-other-pod"
	return []*corev1.Event{
		ev("web-7d4b9c-x2x9z.1", corev1.EventTypeWarning, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500", 3, 2*time.Minute+30*time.Second, 15*time.Second, ref),
		ev("web-7d4b9c-x2x9z.2", corev1.EventTypeNormal, "Killing", "Container web failed liveness probe, will be restarted", 1, 12*time.Second, 12*time.Second, ref),
		ev("web-7d4b9c-q8w2e.1", corev1.EventTypeNormal, "Started", "Started container web", 1, 5*time.Minute, 5*time.Minute, other),
	}
}
