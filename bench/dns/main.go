// Command dns is the cluster DNS benchmark: Switchboard's DNS server and
// CoreDNS 1.14.1 side by side on this machine, same Corefile (CoreDNS's
// kube-dns one), same objects (10,000 services × 10 endpoints, 100,000
// pods), measured with dnsperf (Debian's) in turn:
//
//   - internal: A queries for random services (svc.ns.svc.cluster.local)
//   - external: names forwarded to an upstream this program runs on
//     loopback (never the machine's resolver)
//   - search-path misses: what ndots:5 clients ask first for an external
//     name (name.default.svc.cluster.local, ...), NXDOMAIN
//
// and the resident memory of each server after loading and after the runs.
// Each server is its own process: ours built by this program (-role
// ours), CoreDNS reading the objects through Switchboard's local API,
// served by another process of this program (-role api), as it would read
// a kube-apiserver.
//
// Ours holds the objects in a store of its own, the way a DNS server fed
// by a cluster would (`switchboard dns --kubeconfig`): with the kubernetes
// plugin's TrimStore transforms, which keep only what DNS reads, and its
// pods in a kubernetes.PodTable rather than the store, as CoreDNS's
// informers keep only its object.Pod, object.Service and object.Endpoints
// (-trim=false keeps the objects whole in the store, for comparison).
//
//	go run ./bench/dns [-services 10000] [-endpoints 10] [-pods 100000] [-seconds 10]
//	                   [-only memory] [-objects minimal|realistic] [-trim=false]
//
// -only memory measures only what the memory table needs: for pods
// insecure and pods verified, each server's RSS after loading, then after
// one dnsperf run of internal names. -objects realistic gives the objects
// what a cluster's have (a Deployment's pods with their spec and status,
// endpoints with their target pods, nodes and conditions, services with
// selectors); minimal (the default) gives them only what DNS reads.
//
// For profiling `switchboard dns -f` itself (manifest source, admission,
// controllers): -write-manifests DIR writes the objects as manifest files,
// and -role standalone DIR serves them as `switchboard dns -f DIR` does
// (SWITCHBOARD_BENCH_PPROF=1 serves net/http/pprof on 127.70.0.1:6060).
//
// CoreDNS is taken from .bin/coredns (./test.sh builds it) or
// $SWITCHBOARD_COREDNS.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/switchboard-dev/switchboard/bench/internal/benchnode"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnscmd"
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin/kubernetes"
	_ "github.com/switchboard-dev/switchboard/dns/plugins/all"
	"github.com/switchboard-dev/switchboard/localapi"
)

const zone = "cluster.local"

// Addresses on loopback, private to this benchmark.
const (
	oursAddr     = "127.70.0.1"
	corednsAddr  = "127.70.0.2"
	upstreamAddr = "127.70.0.3"
	apiAddr      = "127.70.0.4:18080"
	dnsPort      = "53"
)

func main() {
	role := flag.String("role", "", "internal: ours | api | standalone (`switchboard dns -f ARGS...`)")
	podsMode := flag.String("pods-mode", "insecure", "internal: the kubernetes plugin's pods mode")
	services := flag.Int("services", 10000, "services")
	endpoints := flag.Int("endpoints", 10, "endpoints per service")
	pods := flag.Int("pods", 100000, "pods")
	seconds := flag.Int("seconds", 10, "seconds per dnsperf run")
	only := flag.String("only", "", `"memory": only the memory table (RSS after loading and after one internal run)`)
	objects := flag.String("objects", "minimal", "minimal | realistic: what the objects hold besides what DNS reads")
	trim := flag.Bool("trim", true, "our store keeps only what DNS reads (the kubernetes plugin's TrimStore and PodTable)")
	manifests := flag.String("write-manifests", "", "write the objects as manifest files into this directory (for `switchboard dns -f`) and exit")
	flag.Parse()
	g := gen{services: *services, endpoints: *endpoints, pods: *pods, realistic: *objects == "realistic"}
	var err error
	switch {
	case *objects != "minimal" && *objects != "realistic":
		err = fmt.Errorf("-objects: want minimal or realistic, got %q", *objects)
	case *only != "" && *only != "memory":
		err = fmt.Errorf("-only: want memory, got %q", *only)
	case *manifests != "":
		err = g.writeManifests(*manifests)
	case *role == "ours":
		err = serveOurs(g, *podsMode, *trim)
	case *role == "standalone":
		err = serveStandalone(flag.Args(), *podsMode)
	case *role == "api":
		err = serveAPI(g)
	case *role == "":
		err = run(g, *seconds, *only == "memory", *trim)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/dns:", err)
		os.Exit(1)
	}
}

// gen builds the same objects in every process: namespace nsN (100
// services each), service svcN with a cluster IP and an EndpointSlice of
// `endpoints` ready endpoints, and pods with IPs; endpoint e of service i
// is pod i*endpoints+e (modulo the pods), in the service's namespace.
type gen struct {
	services, endpoints, pods int
	realistic                 bool // objects as a cluster holds them (see realisticPod ...)
}

func (g gen) namespace(i int) string { return fmt.Sprintf("ns%d", i/100) }

// podService is the service whose endpoints pod i backs.
func (g gen) podService(i int) int { return i / max(g.endpoints, 1) % max(g.services, 1) }

func (g gen) podName(i int) string { return fmt.Sprintf("pod%d", i) }

func ipOf(base netip.Addr, i int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

var (
	svcBase  = netip.MustParseAddr("10.96.0.100")
	podBase  = netip.MustParseAddr("10.128.0.10")
	nodeBase = netip.MustParseAddr("192.168.0.10")
)

const nodes = 100

// fill creates the objects; pods only when withPods (DNS watches pods only
// with `pods verified`, so that is all a cluster-mode DNS would hold),
// into pods when it is not nil (a kubernetes.PodTable, as `switchboard dns
// --kubeconfig` holds them), else into s.
func (g gen) fill(s *cluster.Store, withPods bool, pods *kubernetes.PodTable) error {
	nss := map[string]bool{}
	for i := 0; i < g.services; i++ {
		nss[g.namespace(i)] = true
	}
	for ns := range nss {
		if _, err := s.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	if _, err := s.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}); err != nil {
		return err
	}
	for i := 0; i < g.services; i++ {
		if _, err := s.Create(g.service(i)); err != nil {
			return err
		}
		if _, err := s.Create(g.slice(i)); err != nil {
			return err
		}
	}
	for i := 0; withPods && i < g.pods; i++ {
		if pods != nil {
			if err := pods.Add(g.pod(i)); err != nil {
				return err
			}
			continue
		}
		if _, err := s.Create(g.pod(i)); err != nil {
			return err
		}
	}
	if pods != nil {
		pods.MarkSynced()
	}
	return nil
}

// writeManifests writes the objects (pods included) as multi-document
// YAML files, one per kind, for `switchboard dns -f DIR`. A manifest
// source drops what the API server owns (status, so the pods' addresses).
func (g gen) writeManifests(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, n int, obj func(i int) cluster.Object) error {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		for i := 0; i < n; i++ {
			o := obj(i)
			k := cluster.KindOf(o)
			o.GetObjectKind().SetGroupVersionKind(k.GVK)
			b, err := yaml.Marshal(o)
			if err != nil {
				f.Close()
				return err
			}
			w.WriteString("---\n")
			w.Write(b)
		}
		if err := w.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	nss := max(g.services/100, 1)
	if g.services%100 != 0 {
		nss++
	}
	if err := write("namespaces.yaml", nss, func(i int) cluster.Object {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: g.namespace(i * 100)}}
	}); err != nil {
		return err
	}
	if err := write("services.yaml", g.services, func(i int) cluster.Object { return g.service(i) }); err != nil {
		return err
	}
	if err := write("endpointslices.yaml", g.services, func(i int) cluster.Object { return g.slice(i) }); err != nil {
		return err
	}
	return write("pods.yaml", g.pods, func(i int) cluster.Object {
		p := g.pod(i)
		if len(p.Spec.Containers) > 0 && p.Spec.Containers[0].Image == "" {
			p.Spec.Containers[0].Image = "registry.example.com/x:1" // admission requires one
		}
		return p
	})
}

func (g gen) service(i int) *corev1.Service {
	ns, name := g.namespace(i), fmt.Sprintf("svc%d", i)
	ip := ipOf(svcBase, i).String()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	if g.realistic {
		svc.Labels = map[string]string{"app": name}
		svc.Spec.Selector = map[string]string{"app": name}
		svc.Spec.Ports[0].TargetPort = intstr.FromString("http")
		svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		svc.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
		svc.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
	}
	return svc
}

func (g gen) slice(i int) *discoveryv1.EndpointSlice {
	ns, name := g.namespace(i), fmt.Sprintf("svc%d", i)
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "bench"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if g.realistic {
		sl.Labels["app"] = name
		sl.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: "2026-01-01T00:00:00Z"}
	}
	for e := 0; e < g.endpoints; e++ {
		p := (i*g.endpoints + e) % max(g.pods, 1)
		ep := discoveryv1.Endpoint{
			Addresses:  []string{ipOf(podBase, p).String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}
		if g.realistic {
			ep.Conditions.Serving = ptr.To(true)
			ep.Conditions.Terminating = ptr.To(false)
			ep.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: g.podName(p), UID: uidOf("pod", p)}
			ep.NodeName = ptr.To(fmt.Sprintf("node-%d", p%nodes))
		}
		sl.Endpoints = append(sl.Endpoints, ep)
	}
	return sl
}

// uidOf is a fixed UID-shaped string, so that every process agrees.
func uidOf(kind string, i int) types.UID {
	return types.UID(fmt.Sprintf("%08x-0000-4000-8000-%012x", len(kind), i))
}

func (g gen) pod(i int) *corev1.Pod {
	svc := g.podService(i)
	ns := g.namespace(svc)
	ip := ipOf(podBase, i).String()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: g.podName(i), Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Command: []string{"x"}}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
	if g.realistic {
		realisticPod(p, fmt.Sprintf("svc%d", svc), i)
	}
	return p
}

// realisticPod gives p what `kubectl get pod -o yaml` shows of a
// Deployment's pod on a kubeadm cluster (managedFields aside): owner,
// labels, a container with ports, env, resources, a probe and the
// service-account token volume, the defaults, the node, and a running
// status with its conditions and container status.
func realisticPod(p *corev1.Pod, app string, i int) {
	node := fmt.Sprintf("node-%d", i%nodes)
	hostIP := ipOf(nodeBase, i%nodes).String()
	started := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p.GenerateName = app + "-5d8f7c9b4-"
	p.Labels = map[string]string{"app": app, "pod-template-hash": "5d8f7c9b4"}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-5d8f7c9b4",
		UID: uidOf("replicaset", i/10), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	p.Spec = corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:  "app",
			Image: "registry.example.com/team/app:1.4.2",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			Env: []corev1.EnvVar{
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}},
				{Name: "LOG_LEVEL", Value: "info"},
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
				PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
			},
			VolumeMounts:             []corev1.VolumeMount{{Name: "kube-api-access-x7k2q", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
			TerminationMessagePath:   corev1.TerminationMessagePathDefault,
			TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy:          corev1.PullIfNotPresent,
		}},
		Volumes: []corev1.Volume{{Name: "kube-api-access-x7k2q", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: ptr.To(int32(0o644)),
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr.To(int64(3607)), Path: "token"}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
					Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
			},
		}}}},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptr.To(int64(30)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		ServiceAccountName:            "default",
		DeprecatedServiceAccount:      "default",
		NodeName:                      node,
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 corev1.DefaultSchedulerName,
		Tolerations: []corev1.Toleration{
			{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
			{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To(int64(300))},
		},
		Priority:           ptr.To(int32(0)),
		EnableServiceLinks: ptr.To(true),
		PreemptionPolicy:   ptr.To(corev1.PreemptLowerPriority),
	}
	cond := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started}
	}
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{cond("PodReadyToStartContainers"), cond(corev1.PodInitialized), cond(corev1.PodReady),
			cond(corev1.ContainersReady), cond(corev1.PodScheduled)},
		HostIP:    hostIP,
		HostIPs:   []corev1.HostIP{{IP: hostIP}},
		PodIP:     p.Status.PodIP,
		PodIPs:    p.Status.PodIPs,
		StartTime: &started,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:         "app",
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
			Ready:        true,
			Image:        "registry.example.com/team/app:1.4.2",
			ImageID:      "registry.example.com/team/app@sha256:4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
			ContainerID:  fmt.Sprintf("containerd://%064x", i),
			Started:      ptr.To(true),
			RestartCount: 0,
		}},
		QOSClass: corev1.PodQOSBurstable,
	}
}

// corefile is CoreDNS's kube-dns Corefile, bound to addr, forwarding to
// the benchmark's loopback upstream. extra goes into the kubernetes block.
func corefile(addr, podsMode, extra string) string {
	return fmt.Sprintf(`.:%s {
    bind %s
    errors
    kubernetes %s in-addr.arpa ip6.arpa {
        pods %s
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
%s    }
    forward . %s:%s {
        max_concurrent 1000
    }
    cache 30
    loadbalance
}
`, dnsPort, addr, zone, podsMode, extra, upstreamAddr, dnsPort)
}

func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
}

func serveOurs(g gen, podsMode string, trim bool) error {
	dnscmd.SetGCDefaults() // as `switchboard dns`
	s := cluster.NewStore()
	var pods *kubernetes.PodTable
	if trim {
		kubernetes.TrimStore(s)
		pods = kubernetes.NewPodTable(s)
	}
	if err := g.fill(s, podsMode == "verified", pods); err != nil {
		return err
	}
	if os.Getenv("SWITCHBOARD_BENCH_PPROF") != "" {
		go func() { _ = http.ListenAndServe(oursAddr+":6060", nil) }() // net/http/pprof's handlers
	}
	svc := dnsserver.NewService("Corefile", dnsserver.Options{Port: dnsPort, Env: &dnsserver.Env{Store: s}})
	if err := svc.Start([]byte(corefile(oursAddr, podsMode, ""))); err != nil {
		return err
	}
	dnscmd.ReleaseLoadMemory() // as dnscmd.Run
	fmt.Println("ready")
	waitSignal()
	return svc.Stop()
}

// serveStandalone is `switchboard dns -f DIR...` (dnscmd.NewStore, the
// manifest source, admission and controllers) with the benchmark's
// Corefile, for profiling it (SWITCHBOARD_BENCH_PPROF): go run ./bench/dns
// -write-manifests DIR, then -role standalone DIR.
func serveStandalone(paths []string, podsMode string) error {
	if os.Getenv("SWITCHBOARD_BENCH_PPROF") != "" {
		go func() { _ = http.ListenAndServe(oursAddr+":6060", nil) }() // net/http/pprof's handlers
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	s, problems, err := dnscmd.NewStore(ctx, dnscmd.StoreConfig{Paths: paths, ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "manifest problem:", p)
	}
	fmt.Fprintf(os.Stderr, "store loaded in %s:", time.Since(t0).Round(time.Millisecond))
	for _, k := range cluster.Kinds {
		if objs, _ := s.List(k, "", nil); len(objs) > 0 {
			fmt.Fprintf(os.Stderr, " %s %d", k.Name(), len(objs))
		}
	}
	fmt.Fprintln(os.Stderr)
	svc := dnsserver.NewService("Corefile", dnsserver.Options{Port: dnsPort, Env: &dnsserver.Env{Store: s}})
	if err := svc.Start([]byte(corefile(oursAddr, podsMode, ""))); err != nil {
		return err
	}
	fmt.Println("ready")
	waitSignal()
	return svc.Stop()
}

func serveAPI(g gen) error {
	s := cluster.NewStore()
	if err := g.fill(s, true, nil); err != nil {
		return err
	}
	l, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { waitSignal(); cancel() }()
	fmt.Println("ready")
	return localapi.Serve(ctx, l, localapi.New(s, localapi.Options{}))
}

// upstream answers every question with one A record, like an external
// resolver that knows everything, on loopback.
func upstream() (*mdns.Server, error) {
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Qtype == mdns.TypeA {
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)}}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", net.JoinHostPort(upstreamAddr, dnsPort))
	if err != nil {
		return nil, err
	}
	srv := &mdns.Server{PacketConn: pc, Handler: h}
	go func() { _ = srv.ActivateAndServe() }()
	return srv, nil
}

// child starts this program with a role and waits for its "ready" line.
func child(role string, g gen, extra ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	objects := "minimal"
	if g.realistic {
		objects = "realistic"
	}
	args := append([]string{"-role", role, "-services", strconv.Itoa(g.services), "-endpoints", strconv.Itoa(g.endpoints),
		"-pods", strconv.Itoa(g.pods), "-objects", objects}, extra...)
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start: %q %v", role, line, err)
	}
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func corednsBinary() (string, error) {
	if p := os.Getenv("SWITCHBOARD_COREDNS"); p != "" {
		return p, nil
	}
	p, _ := filepath.Abs(".bin/coredns")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("CoreDNS not found at %s: run ./test.sh once (it builds it) or set SWITCHBOARD_COREDNS", p)
	}
	return p, nil
}

// waitAnswer waits until addr answers name with NOERROR.
func waitAnswer(addr, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &mdns.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		r, _, err := c.Exchange(m, net.JoinHostPort(addr, dnsPort))
		if err == nil && r.Rcode == mdns.RcodeSuccess && len(r.Answer) > 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within %s", addr, name, timeout)
}

// queryFiles writes the dnsperf input of each workload.
func queryFiles(dir string, g gen) (map[string]string, error) {
	files := map[string]string{}
	write := func(name string, lines []string) error {
		p := filepath.Join(dir, name)
		files[name] = p
		return os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var internal, external, search []string
	for i := 0; i < 20000; i++ {
		k := r.IntN(g.services)
		internal = append(internal, fmt.Sprintf("svc%d.%s.svc.%s A", k, g.namespace(k), zone))
		host := fmt.Sprintf("host%d.example%d.com", r.IntN(1000), r.IntN(10))
		external = append(external, host+" A")
		// ndots:5 from a pod in namespace default tries these first.
		suffix := []string{"default.svc." + zone, "svc." + zone, zone}[i%3]
		search = append(search, host+"."+suffix+" A")
	}
	if err := write("internal", internal); err != nil {
		return nil, err
	}
	if err := write("external", external); err != nil {
		return nil, err
	}
	return files, write("search-miss", search)
}

var (
	qpsRe  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	latRe  = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	lostRe = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
)

type perf struct {
	qps, latMs float64
	lost       int
}

func dnsperf(addr, file string, seconds int) (perf, error) {
	out, err := exec.Command("dnsperf", "-s", addr, "-p", dnsPort, "-d", file, "-l", strconv.Itoa(seconds),
		"-c", "4", "-q", "200", "-t", "2").CombinedOutput()
	if err != nil {
		return perf{}, fmt.Errorf("dnsperf: %v\n%s", err, out)
	}
	var p perf
	if m := qpsRe.FindSubmatch(out); m != nil {
		p.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := latRe.FindSubmatch(out); m != nil {
		l, _ := strconv.ParseFloat(string(m[1]), 64)
		p.latMs = l * 1000
	}
	if m := lostRe.FindSubmatch(out); m != nil {
		p.lost, _ = strconv.Atoi(string(m[1]))
	}
	return p, nil
}

func run(g gen, seconds int, memoryOnly, trim bool) error {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return fmt.Errorf("dnsperf not found: apt-get install dnsperf (./test.sh installs it)")
	}
	if _, err := corednsBinary(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "switchboard-bench-dns-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	up, err := upstream()
	if err != nil {
		return err
	}
	defer up.Shutdown()
	files, err := queryFiles(dir, g)
	if err != nil {
		return err
	}

	api, err := child("api", g)
	if err != nil {
		return err
	}
	defer stop(api)

	fmt.Fprintf(os.Stderr, "pods insecure (kube-dns's default): loading %d services × %d endpoints ...\n", g.services, g.endpoints)
	pr, err := startPair(g, dir, "insecure", trim)
	if err != nil {
		return err
	}
	defer pr.stop()
	pr.memLoad()

	workloads := []string{"internal", "external", "search-miss"}
	if memoryOnly {
		workloads = []string{"internal"}
	}
	results := map[string][2]perf{}
	for _, w := range workloads {
		if results[w], err = pr.dnsperf(w, files[w], seconds); err != nil {
			return err
		}
	}
	if dst := os.Getenv("SWITCHBOARD_BENCH_PPROF"); dst != "" {
		if err := saveProfile("http://"+oursAddr+":6060/debug/pprof/heap", dst); err != nil {
			fmt.Fprintln(os.Stderr, "heap profile:", err)
		} else {
			fmt.Fprintln(os.Stderr, "heap profile of our server saved to", dst)
		}
	}
	pr.memRuns()
	pr.stop()

	fmt.Fprintf(os.Stderr, "pods verified: both servers watch the %d pods too ...\n", g.pods)
	prv, err := startPair(g, dir, "verified", trim)
	if err != nil {
		return err
	}
	defer prv.stop()
	prv.memLoad()
	pv, err := prv.dnsperf("internal", files["internal"], seconds)
	if err != nil {
		return err
	}
	if dst := os.Getenv("SWITCHBOARD_BENCH_PPROF"); dst != "" {
		if err := saveProfile("http://"+oursAddr+":6060/debug/pprof/heap", dst+".verified"); err == nil {
			fmt.Fprintln(os.Stderr, "heap profile of our server (pods verified) saved to", dst+".verified")
		}
	}
	prv.memRuns()
	prv.stop()

	objects := "minimal objects (what DNS reads)"
	if g.realistic {
		objects = "realistic objects (as a cluster holds them)"
	}
	store := "trimmed to what DNS reads"
	if !trim {
		store = "whole objects"
	}
	fmt.Printf("bench/dns: %d services × %d endpoints, %d pods, %s; our store: %s; dnsperf -c 4 -q 200, %ds per run, sharing the machine's cores; %s\n\n",
		g.services, g.endpoints, g.pods, objects, store, seconds, time.Now().Format(time.RFC3339))
	fmt.Printf("%-34s %14s %14s %8s\n", "work", "switchboard", "coredns 1.14", "ratio")
	for _, w := range workloads {
		r := results[w]
		fmt.Printf("%-34s %14.0f %14.0f %7.2fx\n", w+" QPS", r[0].qps, r[1].qps, r[0].qps/r[1].qps)
		fmt.Printf("%-34s %13.2fms %13.2fms %7.2fx\n", w+" average latency", r[0].latMs, r[1].latMs, r[1].latMs/r[0].latMs)
		if r[0].lost+r[1].lost > 0 {
			fmt.Printf("%-34s %14d %14d\n", w+" queries lost", r[0].lost, r[1].lost)
		}
	}
	runs := "RSS after the runs"
	if memoryOnly {
		runs = "RSS after the internal run"
	}
	pr.printMemory(runs)
	fmt.Printf("\nwith pods verified (both servers watch the %d pods):\n", g.pods)
	fmt.Printf("%-34s %14.0f %14.0f %7.2fx\n", "internal QPS", pv[0].qps, pv[1].qps, pv[0].qps/pv[1].qps)
	prv.printMemory("RSS after the internal run")
	fmt.Printf("\nratio: QPS and memory as switchboard's advantage (>1 is better for switchboard); CoreDNS's published memory model gives (pods+services)/1000+54 = %.0f MB\n",
		float64(g.pods+g.services)/1000+54)
	return nil
}

// saveProfile fetches a pprof profile to a file (SWITCHBOARD_BENCH_PPROF).
func saveProfile(url, dst string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// pair is our server and CoreDNS, started with the same Corefile.
type pair struct {
	ours, coredns           *exec.Cmd
	oursReady, corednsReady time.Duration
	load, runs              [2]int64 // RSS after loading and after the runs: ours, CoreDNS
}

func rss(cmd *exec.Cmd) int64 {
	u, _ := benchnode.ProcUsage(cmd.Process.Pid)
	return u.RSS
}

func (p *pair) memLoad() { p.load = [2]int64{rss(p.ours), rss(p.coredns)} }
func (p *pair) memRuns() { p.runs = [2]int64{rss(p.ours), rss(p.coredns)} }

// dnsperf runs one workload against each server in turn.
func (p *pair) dnsperf(w, file string, seconds int) ([2]perf, error) {
	var r [2]perf
	for i, addr := range []string{oursAddr, corednsAddr} {
		fmt.Fprintf(os.Stderr, "dnsperf %s against %s (%ds) ...\n", w, []string{"switchboard", "coredns"}[i], seconds)
		var err error
		if r[i], err = dnsperf(addr, file, seconds); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (p *pair) printMemory(runs string) {
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("%-34s %12.1fMB %12.1fMB %7.2fx\n", "RSS after loading", mb(p.load[0]), mb(p.load[1]), float64(p.load[1])/float64(p.load[0]))
	fmt.Printf("%-34s %12.1fMB %12.1fMB %7.2fx\n", runs, mb(p.runs[0]), mb(p.runs[1]), float64(p.runs[1])/float64(p.runs[0]))
	fmt.Printf("%-34s %13.1fs %13.1fs\n", "time to first answer", p.oursReady.Seconds(), p.corednsReady.Seconds())
}

func (p *pair) stop() {
	stop(p.ours)
	stop(p.coredns)
	p.ours, p.coredns = nil, nil
}

// startPair starts both servers with the kube-dns Corefile in podsMode and
// waits until each answers for the last service.
func startPair(g gen, dir, podsMode string, trim bool) (*pair, error) {
	coredns, err := corednsBinary()
	if err != nil {
		return nil, err
	}
	p := &pair{}
	probe := fmt.Sprintf("svc%d.%s.svc.%s.", g.services-1, g.namespace(g.services-1), zone)
	t0 := time.Now()
	if p.ours, err = child("ours", g, "-pods-mode", podsMode, "-trim="+strconv.FormatBool(trim)); err != nil {
		return nil, err
	}
	if err := waitAnswer(oursAddr, probe, 5*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	p.oursReady = time.Since(t0)
	cf := filepath.Join(dir, "Corefile."+podsMode)
	if err := os.WriteFile(cf, []byte(corefile(corednsAddr, podsMode, "        endpoint http://"+apiAddr+"\n")), 0o644); err != nil {
		p.stop()
		return nil, err
	}
	t1 := time.Now()
	p.coredns = exec.Command(coredns, "-conf", cf)
	if err := p.coredns.Start(); err != nil {
		p.coredns = nil
		p.stop()
		return nil, err
	}
	if err := waitAnswer(corednsAddr, probe, 5*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	p.corednsReady = time.Since(t1)
	return p, nil
}
