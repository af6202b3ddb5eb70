package controllers

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

func TestPodToEndpointConditions(t *testing.T) {
	// The discovery/v1 API: "ready indicates that this endpoint is ready
	// to receive traffic ... should be marked ready if it is serving and
	// not terminating, though this can be overridden ... when the
	// associated Service has set the publishNotReadyAddresses flag";
	// "serving is identical to ready except that it is set regardless of
	// the terminating state of endpoints"; "terminating indicates that
	// this endpoint is terminating". Upstream podToEndpoint:
	//   serving := IsPodReady(pod)
	//   terminating := pod.DeletionTimestamp != nil
	//   ready := service.Spec.PublishNotReadyAddresses || (serving && !terminating)
	tests := []struct {
		name                        string
		podReady, deleting, publish bool
		ready, serving, terminating bool
	}{
		{"ready pod: ready, serving", true, false, false, true, true, false},
		{"not-ready pod: nothing", false, false, false, false, false, false},
		{"ready pod terminating: serving and terminating, never ready", true, true, false, false, true, true},
		{"not-ready pod terminating: terminating only", false, true, false, false, false, true},
		{"publishNotReadyAddresses: a not-ready pod is ready (serving stays the pod's readiness)", false, false, true, true, false, false},
		{"publishNotReadyAddresses: a terminating pod is ready", true, true, true, true, true, true},
		{"publishNotReadyAddresses: a terminating not-ready pod is ready", false, true, true, true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := bare("default", "p", func(p *corev1.Pod) {
				p.UID = "uid-p"
				p.Spec.NodeName = "node-1"
				p.Status.PodIPs = []corev1.PodIP{{IP: "127.100.0.7"}}
				setReadyConditions(&p.Status, tc.podReady)
				if tc.deleting {
					p.DeletionTimestamp = ptr.To(metav1.Now())
				}
			})
			s := svc("default", "web")
			s.Spec.PublishNotReadyAddresses = tc.publish
			ep := podToEndpoint(pod, node("node-1", true, map[string]string{corev1.LabelTopologyZone: "z1"}), s, discoveryv1.AddressTypeIPv4)
			c := ep.Conditions
			if *c.Ready != tc.ready || *c.Serving != tc.serving || *c.Terminating != tc.terminating {
				t.Fatalf("ready=%v serving=%v terminating=%v, want %v %v %v", *c.Ready, *c.Serving, *c.Terminating, tc.ready, tc.serving, tc.terminating)
			}
			if len(ep.Addresses) != 1 || ep.Addresses[0] != "127.100.0.7" || *ep.NodeName != "node-1" || *ep.Zone != "z1" ||
				ep.TargetRef.Kind != "Pod" || ep.TargetRef.Name != "p" || ep.TargetRef.UID != "uid-p" || ep.Hostname != nil {
				t.Fatalf("endpoint %+v", ep)
			}
		})
	}
}

// slicesOf returns the managed slices of a Service, by name.
func slicesOf(s *cluster.Store, ns, name string) []*discoveryv1.EndpointSlice {
	return cluster.List[*discoveryv1.EndpointSlice](s, ns, labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: EndpointSliceControllerName,
	}))
}

// summary renders slices as "port:pod,pod;port:pod" (sorted), for tests.
func summary(slices []*discoveryv1.EndpointSlice) string {
	var parts []string
	for _, sl := range slices {
		var ports []string
		for _, p := range sl.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d", ptr.Deref(p.Name, ""), ptr.Deref(p.Port, 0)))
		}
		var pods []string
		for _, e := range sl.Endpoints {
			pods = append(pods, e.TargetRef.Name)
		}
		sort.Strings(pods)
		parts = append(parts, "["+strings.Join(ports, ",")+"]:"+strings.Join(pods, ","))
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

func endpointFor(slices []*discoveryv1.EndpointSlice, pod string) *discoveryv1.Endpoint {
	for _, sl := range slices {
		for i := range sl.Endpoints {
			if sl.Endpoints[i].TargetRef != nil && sl.Endpoints[i].TargetRef.Name == pod {
				return &sl.Endpoints[i]
			}
		}
	}
	return nil
}

func podOn(nodeName, name string, lbls map[string]string, f func(*corev1.Pod)) *corev1.Pod {
	return bare("default", name, func(p *corev1.Pod) {
		p.Labels = lbls
		p.Spec.NodeName = nodeName
		if f != nil {
			f(p)
		}
	})
}

func withContainerPorts(ports ...corev1.ContainerPort) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers[0].Ports = ports }
}

func TestEndpointSlices(t *testing.T) {
	app := map[string]string{"app": "web"}
	named := []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")}}
	tests := []struct {
		name    string
		svc     *corev1.Service
		pods    []*corev1.Pod
		want    string // summary of the slices
		check   func(t *testing.T, slices []*discoveryv1.EndpointSlice)
		ignored bool // the Service is not the controller's: no slices
	}{
		{name: "numbered targetPort: the number as is",
			svc:  svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = app }),
			pods: []*corev1.Pod{podOn("node-1", "a", app, nil), podOn("node-1", "b", app, nil)},
			want: "[http=8080]:a,b"},
		{name: "named targetPort resolved per pod by name and protocol; a pod without it gets the port left out",
			svc: svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = app; s.Spec.Ports = named }),
			pods: []*corev1.Pod{
				podOn("node-1", "a", app, withContainerPorts(corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP})),
				podOn("node-1", "b", app, withContainerPorts(corev1.ContainerPort{Name: "http", ContainerPort: 9090, Protocol: corev1.ProtocolTCP})),
				podOn("node-1", "c", app, withContainerPorts(corev1.ContainerPort{Name: "http", ContainerPort: 7070, Protocol: corev1.ProtocolUDP})),
				podOn("node-1", "d", app, withContainerPorts(corev1.ContainerPort{Name: "metrics", ContainerPort: 9100, Protocol: corev1.ProtocolTCP})),
			},
			want: "[]:c,d;[http=8080]:a;[http=9090]:b"},
		{name: "pods outside the selector, terminal pods and pods without an IP are not endpoints",
			svc: svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = app }),
			pods: []*corev1.Pod{
				podOn("node-1", "a", app, nil),
				podOn("node-1", "other", map[string]string{"app": "other"}, nil),
				podOn("node-2", "noip", app, nil), // no kubelet on node-2: never gets an IP
				podOn("node-2", "done", app, func(p *corev1.Pod) { // terminal: phase Succeeded
					p.Status.Phase = corev1.PodSucceeded
					p.Status.PodIP, p.Status.PodIPs = "127.100.9.9", []corev1.PodIP{{IP: "127.100.9.9"}}
				}),
			},
			want: "[http=8080]:a"},
		{name: "hostname when pod.spec.hostname is set and pod.spec.subdomain is the Service's name",
			svc: svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = app; s.Spec.ClusterIP = "None" }),
			pods: []*corev1.Pod{
				podOn("node-1", "a", app, func(p *corev1.Pod) { p.Spec.Hostname = "web-0"; p.Spec.Subdomain = "web" }),
				podOn("node-1", "b", app, func(p *corev1.Pod) { p.Spec.Hostname = "web-1"; p.Spec.Subdomain = "other" }),
			},
			want: "[http=8080]:a,b",
			check: func(t *testing.T, slices []*discoveryv1.EndpointSlice) {
				if h := endpointFor(slices, "a").Hostname; h == nil || *h != "web-0" {
					t.Errorf("a: hostname %v", h)
				}
				if h := endpointFor(slices, "b").Hostname; h != nil {
					t.Errorf("b (subdomain other): hostname %q", *h)
				}
				if _, ok := slices[0].Labels[corev1.IsHeadlessService]; !ok {
					t.Errorf("headless label missing: %v", slices[0].Labels)
				}
			}},
		{name: "a Service with no matching pods keeps one empty placeholder slice",
			svc:  svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = app }),
			want: "[]:"},
		{name: "labels, owner, generateName, addressType and the trigger-time annotation as upstream",
			svc: svc("default", "web", func(s *corev1.Service) {
				s.Spec.Selector = app
				s.Labels = map[string]string{"team": "a", discoveryv1.LabelManagedBy: "someone"}
			}),
			pods: []*corev1.Pod{podOn("node-1", "a", app, nil)},
			want: "[http=8080]:a",
			check: func(t *testing.T, slices []*discoveryv1.EndpointSlice) {
				sl := slices[0]
				if sl.Labels["team"] != "a" || sl.Labels[discoveryv1.LabelServiceName] != "web" || sl.Labels[discoveryv1.LabelManagedBy] != EndpointSliceControllerName {
					t.Errorf("labels %v", sl.Labels)
				}
				if _, ok := sl.Labels[corev1.IsHeadlessService]; ok {
					t.Errorf("a ClusterIP service's slice has the headless label")
				}
				ref := metav1.GetControllerOf(sl)
				if ref == nil || ref.Kind != "Service" || ref.Name != "web" || ref.APIVersion != "v1" {
					t.Errorf("owner %+v", ref)
				}
				if !strings.HasPrefix(sl.Name, "web-") || sl.AddressType != discoveryv1.AddressTypeIPv4 {
					t.Errorf("name %s addressType %s", sl.Name, sl.AddressType)
				}
				if _, err := time.Parse(time.RFC3339Nano, sl.Annotations[corev1.EndpointsLastChangeTriggerTime]); err != nil {
					t.Errorf("trigger time annotation %q: %v", sl.Annotations[corev1.EndpointsLastChangeTriggerTime], err)
				}
			}},
		{name: "zone from the Node's topology.kubernetes.io/zone label",
			svc:  svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = app }),
			pods: []*corev1.Pod{podOn("node-z", "a", app, nil)},
			want: "[http=8080]:a",
			check: func(t *testing.T, slices []*discoveryv1.EndpointSlice) {
				ep := endpointFor(slices, "a")
				if ep.Zone == nil || *ep.Zone != "zone-b" || *ep.NodeName != "node-z" {
					t.Errorf("zone %v node %v", ep.Zone, ep.NodeName)
				}
			}},
		{name: "selector-less Services are not the controller's", ignored: true,
			svc:  svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = nil }),
			pods: []*corev1.Pod{podOn("node-1", "a", app, nil)}},
		{name: "ExternalName Services are not the controller's", ignored: true,
			svc:  svc("default", "web", withType(corev1.ServiceTypeExternalName)),
			pods: []*corev1.Pod{podOn("node-1", "a", app, nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig(), nil)
			addNode(t, env.store, node("node-1", true, nil))
			addNode(t, env.store, node("node-z", true, map[string]string{corev1.LabelTopologyZone: "zone-b"}))
			startKubelet(t, env.store, "node-1")
			startKubelet(t, env.store, "node-z")
			for _, p := range tc.pods {
				create(t, env.store, p)
			}
			create(t, env.store, tc.svc)
			if tc.ignored {
				// Sync it here, so that "nothing was written" is a fact.
				if err := env.endpointSlices().syncService("default/web"); err != nil {
					t.Fatal(err)
				}
				if sl := slicesOf(env.store, "default", "web"); len(sl) != 0 {
					t.Fatalf("slices for an ignored Service: %s", summary(sl))
				}
				return
			}
			eventually(t, "slices "+tc.want, func() (bool, string) {
				got := summary(slicesOf(env.store, "default", "web"))
				return got == tc.want, got
			})
			if tc.check != nil {
				tc.check(t, slicesOf(env.store, "default", "web"))
			}
		})
	}
}

func TestEndpointSliceReadinessAndTerminating(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	k := startKubelet(t, env.store, "node-1")
	app := map[string]string{"app": "web"}
	create(t, env.store, svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = app }))
	create(t, env.store, podOn("node-1", "a", app, nil))
	cond := func(pod string) string {
		ep := endpointFor(slicesOf(env.store, "default", "web"), pod)
		if ep == nil {
			return "absent"
		}
		c := ep.Conditions
		return fmt.Sprintf("ready=%v serving=%v terminating=%v", *c.Ready, *c.Serving, *c.Terminating)
	}
	waitCond := func(want string) {
		t.Helper()
		eventually(t, want, func() (bool, string) { got := cond("a"); return got == want, got })
	}
	waitCond("ready=true serving=true terminating=false")
	k.setReady("default", "a", false)
	waitCond("ready=false serving=false terminating=false")
	k.setReady("default", "a", true)
	waitCond("ready=true serving=true terminating=false")
	// A terminating pod stays an endpoint, serving but not ready, until
	// it is gone.
	k.holdTermination("default/a", true)
	if err := env.store.Delete(cluster.KindPod, "default", "a", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCond("ready=false serving=true terminating=true")
	k.holdTermination("default/a", false)
	waitCond("absent")

	// publishNotReadyAddresses: a not-ready pod is published ready.
	create(t, env.store, podOn("node-1", "b", app, nil))
	if _, err := env.store.UpdateFunc(cluster.KindService, "default", "web", func(o cluster.Object) error {
		o.(*corev1.Service).Spec.PublishNotReadyAddresses = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b published", func() (bool, string) {
		got := cond("b")
		return got == "ready=true serving=true terminating=false", got
	})
	k.setReady("default", "b", false)
	eventually(t, "b not ready but published", func() (bool, string) {
		got := cond("b")
		return got == "ready=true serving=false terminating=false", got
	})
}

func TestEndpointSliceManyPods(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	k := startKubelet(t, env.store, "node-1")
	app := map[string]string{"app": "big"}
	for i := range 250 {
		create(t, env.store, podOn("node-1", fmt.Sprintf("p%03d", i), app, nil))
	}
	create(t, env.store, svc("default", "big", func(s *corev1.Service) { s.Spec.Selector = app }))
	// "at most 100 endpoints per slice".
	eventually(t, "250 endpoints in slices of at most 100", func() (bool, string) {
		slices := slicesOf(env.store, "default", "big")
		seen := map[string]bool{}
		var sizes []int
		for _, sl := range slices {
			sizes = append(sizes, len(sl.Endpoints))
			if len(sl.Endpoints) > 100 {
				return false, fmt.Sprintf("a slice with %d endpoints", len(sl.Endpoints))
			}
			for _, e := range sl.Endpoints {
				if !*e.Conditions.Ready {
					return false, "not ready yet"
				}
				seen[e.TargetRef.Name] = true
			}
		}
		// Not necessarily 3 slices: "the control plane tries to fill
		// EndpointSlices as full as possible, but does not actively
		// rebalance them" - pods that turn ready at different times may
		// end up in a fourth slice.
		return len(seen) == 250, fmt.Sprintf("%d distinct endpoints, slice sizes %v", len(seen), sizes)
	})
	// One pod turns not ready: only its slice is written.
	before := map[string]string{}
	for _, sl := range slicesOf(env.store, "default", "big") {
		before[sl.Name] = sl.ResourceVersion
	}
	k.setReady("default", "p123", false)
	eventually(t, "p123 not ready", func() (bool, string) {
		ep := endpointFor(slicesOf(env.store, "default", "big"), "p123")
		return ep != nil && !*ep.Conditions.Ready, "still ready"
	})
	changed := 0
	for _, sl := range slicesOf(env.store, "default", "big") {
		if before[sl.Name] != sl.ResourceVersion {
			changed++
		}
		if _, ok := before[sl.Name]; !ok {
			t.Errorf("slice %s is new", sl.Name)
		}
	}
	if changed != 1 {
		t.Fatalf("%d slices rewritten for one pod's readiness, want 1", changed)
	}
}

// No churn: a sync with nothing new writes nothing. This drives the
// controller's sync directly (no Manager), so "nothing happened" is a
// fact, not a wait.
func TestEndpointSliceSyncIsIdempotent(t *testing.T) {
	s := cluster.NewStore()
	a, _ := NewAllocator(testConfig())
	s.Use(a.Admit)
	addNode(t, s, node("node-1", true, nil))
	app := map[string]string{"app": "web"}
	for i := range 130 {
		p := create(t, s, podOn("node-1", fmt.Sprintf("p%03d", i), app, nil)).(*corev1.Pod)
		ip := fmt.Sprintf("127.101.%d.%d", i/200, i%200+1)
		if _, err := s.UpdateStatusFunc(cluster.KindPod, "default", p.Name, func(o cluster.Object) error {
			x := o.(*corev1.Pod)
			x.Status.Phase = corev1.PodRunning
			x.Status.PodIP, x.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
			setReadyConditions(&x.Status, i%3 != 0)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	create(t, s, svc("default", "web", func(x *corev1.Service) { x.Spec.Selector = app; x.Labels = map[string]string{"tier": "front"} }))
	c := newEndpointSliceController(s, newController("endpoint_slice", testConfig().withDefaults(), newQueueMetrics(nil)), nil, testConfig().withDefaults())
	if err := c.syncService("default/web"); err != nil {
		t.Fatal(err)
	}
	got := summary(slicesOf(s, "default", "web"))
	if n := len(slicesOf(s, "default", "web")); n != 2 {
		t.Fatalf("%d slices for 130 endpoints: %s", n, got)
	}
	rv := s.ResourceVersion()
	for range 3 {
		if err := c.syncService("default/web"); err != nil {
			t.Fatal(err)
		}
	}
	if s.ResourceVersion() != rv {
		t.Fatalf("a sync with nothing new wrote to the store (rv %s -> %s)", rv, s.ResourceVersion())
	}
	// A label on the Service is mirrored to its slices (an update, not a
	// re-creation).
	names := map[string]bool{}
	for _, sl := range slicesOf(s, "default", "web") {
		names[sl.Name] = true
	}
	if _, err := s.UpdateFunc(cluster.KindService, "default", "web", func(o cluster.Object) error {
		o.SetLabels(map[string]string{"tier": "back"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.syncService("default/web"); err != nil {
		t.Fatal(err)
	}
	for _, sl := range slicesOf(s, "default", "web") {
		if !names[sl.Name] || sl.Labels["tier"] != "back" {
			t.Fatalf("slice %s labels %v", sl.Name, sl.Labels)
		}
	}
	if summary(slicesOf(s, "default", "web")) != got {
		t.Fatal("endpoints moved on a label change")
	}
}

func TestEndpointSliceLeavesOthersAlone(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	startKubelet(t, env.store, "node-1")
	app := map[string]string{"app": "web"}
	user := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "external-1", Labels: map[string]string{
			discoveryv1.LabelServiceName: "external", discoveryv1.LabelManagedBy: "staff",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.42"}}},
	}
	foreign := user.DeepCopy()
	foreign.Name = "web-foreign"
	foreign.Labels = map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "another-controller"}
	user = create(t, env.store, user).(*discoveryv1.EndpointSlice)
	foreign = create(t, env.store, foreign).(*discoveryv1.EndpointSlice)
	create(t, env.store, svc("default", "external", func(s *corev1.Service) { s.Spec.Selector = nil }))
	create(t, env.store, svc("default", "web", func(s *corev1.Service) { s.Spec.Selector = app }))
	create(t, env.store, podOn("node-1", "a", app, nil))
	eventually(t, "web's own slice", func() (bool, string) {
		got := summary(slicesOf(env.store, "default", "web"))
		return got == "[http=8080]:a", got
	})
	for _, want := range []*discoveryv1.EndpointSlice{user, foreign} {
		got, err := cluster.Get[*discoveryv1.EndpointSlice](env.store, "default", want.Name)
		if err != nil || got.ResourceVersion != want.ResourceVersion {
			t.Fatalf("slice %s was touched: %v", want.Name, err)
		}
	}
	// The Service goes: its slices go, the others stay.
	if err := env.store.Delete(cluster.KindService, "default", "web", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web's slices removed", func() (bool, string) {
		return len(slicesOf(env.store, "default", "web")) == 0, summary(slicesOf(env.store, "default", "web"))
	})
	for _, want := range []*discoveryv1.EndpointSlice{user, foreign} {
		if _, err := cluster.Get[*discoveryv1.EndpointSlice](env.store, "default", want.Name); err != nil {
			t.Fatalf("slice %s: %v", want.Name, err)
		}
	}
}
