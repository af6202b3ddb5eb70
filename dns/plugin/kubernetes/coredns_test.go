package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/internal/testutil"
	"github.com/switchboard-dev/switchboard/localapi"
)

// knownDifferences lists the questions where we answer differently from
// CoreDNS on purpose; the README says why. Keyed by "variant name type".
var knownDifferences = map[string]string{}

// serveAPI serves store with the local Kubernetes-shaped API on
// 127.0.0.1:0 and returns its URL.
func serveAPI(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		_ = localapi.Serve(ctx, ln, h)
	}()
	return "http://" + ln.Addr().String()
}

// TestDifferentialCoreDNS serves the fixture through the local API to a
// real CoreDNS 1.14.1 (one server block per variant, each bound to
// 127.0.0.1) and asks it and us every question of the tables plus a
// generated sweep of names and types: rcode, answer and additional
// records as sets, and the presence of the authority SOA must agree. We
// answer twice: from the store CoreDNS reads, and from a store with
// TrimStore's transforms holding the same objects (plus what the trims
// drop), pods in it or in a PodTable, as a DNS server fed by a cluster
// holds them.
func TestDifferentialCoreDNS(t *testing.T) {
	bin := dnstest.CoreDNSBinary(t)
	store := fixtureStore(t)
	trimmed := trimmedFixtureStore(t)
	compact := compactFixtureStore(t)
	api := serveAPI(t, localapi.New(store, localapi.Options{}))

	ports := make([]string, len(variants))
	var corefile strings.Builder
	for i, v := range variants {
		ports[i] = dnstest.FreePort(t)
		fmt.Fprintf(&corefile, ".:%s {\n  bind 127.0.0.1\n  kubernetes %s {\n    endpoint %s\n", ports[i], v.zones, api)
		for _, o := range v.options {
			fmt.Fprintf(&corefile, "    %s\n", o)
		}
		corefile.WriteString("  }\n}\n")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, []byte(corefile.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out testutil.SyncBuffer
	cmd := exec.CommandContext(ctx, bin, "-conf", path)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("CoreDNS output:\n%s", out.String())
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}

	// CoreDNS serves once its informers have synced.
	c := &dns.Client{Timeout: time.Second}
	for i, p := range ports {
		addr := net.JoinHostPort("127.0.0.1", p)
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := new(dns.Msg)
			r.SetQuestion("dns-version.cluster.local.", dns.TypeTXT)
			m, _, err := c.Exchange(r, addr)
			if err == nil && m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CoreDNS block %s (port %s) not answering: %v\n%s", variants[i].name, p, err, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	type pair struct {
		v            variant
		store        string
		ours, theirs string
	}
	var pairs []pair
	for _, st := range []struct {
		name  string
		store *cluster.Store
	}{{"", store}, {" (trimmed store)", trimmed}, {" (pod table)", compact}} {
		for i, v := range variants {
			k := newPlugin(t, st.store, v.corefile(api))
			pairs = append(pairs, pair{v, st.name, startServer(t, k), net.JoinHostPort("127.0.0.1", ports[i])})
		}
	}
	// compare asks both servers every question; it returns the
	// differences not listed as known, and counts.
	compare := func() (diffs []string, total, same int) {
		for _, p := range pairs {
			for _, q := range differentialQuestions(p.v) {
				total++
				got := answerOf(exchange(t, p.ours, q.name, q.qtype, false), false)
				want := answerOf(exchange(t, p.theirs, q.name, q.qtype, false), false)
				key := p.v.name + " " + q.name + " " + dns.TypeToString[q.qtype]
				_, known := knownDifferences[key]
				switch {
				case got.equal(want) && known:
					diffs = append(diffs, fmt.Sprintf("%s: listed as a known difference (%s) but the answers agree", key, knownDifferences[key]))
				case got.equal(want):
					same++
				case !known:
					diffs = append(diffs, fmt.Sprintf("%s%s (%s):\n ours   %s\n CoreDNS %s", key, p.store, q.rule, got, want))
				}
			}
		}
		return diffs, total, same
	}
	diffs, total, same := compare()
	for _, d := range diffs {
		t.Error(d)
	}
	t.Logf("%d questions, %d answered as CoreDNS answers", total, same)
	if total == 0 {
		t.Fatal(errors.New("no question asked"))
	}

	// Change the store under both (CoreDNS through the API's watches) and
	// compare again once CoreDNS has caught up.
	changeStore(t, store)
	changeStore(t, trimmed)
	changeStore(t, compact)
	// Wait until both show the last change of every kind (so that a
	// comparison of two stale answers cannot pass), then compare.
	markers := []struct {
		block int
		name  string
		qtype uint16
		ok    func(m *dns.Msg) bool
	}{
		{0, "web.default.svc.cluster.local.", A, func(m *dns.Msg) bool { return m.Rcode == dns.RcodeNameError }},
		{0, "cache.default.svc.cluster.local.", A, func(m *dns.Msg) bool { return len(m.Answer) == 1 }},
		{0, "ghost.svc.cluster.local.", A, func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess }},
		{1, "10-244-0-10.default.pod.cluster.local.", A, func(m *dns.Msg) bool { return m.Rcode == dns.RcodeNameError }},
		{1, "10-244-3-10.default.pod.cluster.local.", A, func(m *dns.Msg) bool { return len(m.Answer) == 1 }},
		{0, "ext.default.svc.cluster.local.", CNAME, func(m *dns.Msg) bool {
			return len(m.Answer) == 1 && m.Answer[0].(*dns.CNAME).Target == "web.default.svc.cluster.local."
		}},
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, mk := range markers {
		for _, addr := range []string{pairs[mk.block].ours, pairs[len(variants)+mk.block].ours, pairs[2*len(variants)+mk.block].ours, pairs[mk.block].theirs} {
			for !mk.ok(exchange(t, addr, mk.name, mk.qtype, false)) {
				if time.Now().After(deadline) {
					t.Fatalf("%s %s @%s does not show the change", mk.name, dns.TypeToString[mk.qtype], addr)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	for {
		diffs, total, same = compare()
		if len(diffs) == 0 {
			t.Logf("after the changes: %d questions, %d answered as CoreDNS answers", total, same)
			return
		}
		if time.Now().After(deadline) {
			for _, d := range diffs {
				t.Error("after the changes: " + d)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// changeStore creates, changes and deletes objects of every kind the
// plugin reads.
func changeStore(t *testing.T, store *cluster.Store) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	create := func(o cluster.Object) { _, err := store.Create(o); must(err) }
	create(newSvc("default", "fresh", []string{"10.96.0.70"}, tcp("http", 80)))
	create(newSlice("default", "fresh-1", "fresh", v4, []port{tcp("http", 80)}, ep{ip: "10.244.10.1", pod: "fresh-1"}))
	create(namespace("ghost", map[string]string{"team": "a"}))
	must(store.Delete(cluster.KindEndpointSlice, "default", "cache-2", cluster.DeleteOptions{}))
	must(store.Delete(cluster.KindService, "default", "web", cluster.DeleteOptions{}))
	_, err := store.UpdateFunc(cluster.KindEndpointSlice, "default", "db-xyz", func(o cluster.Object) error {
		o.(*discoveryv1.EndpointSlice).Endpoints[1].Conditions.Ready = ptr.To(false)
		return nil
	})
	must(err)
	_, err = store.UpdateFunc(cluster.KindService, "other", "svc3", func(o cluster.Object) error {
		o.SetLabels(map[string]string{"app": "x"})
		return nil
	})
	must(err)
	_, err = store.UpdateFunc(cluster.KindNamespace, "", "default", func(o cluster.Object) error {
		o.SetLabels(map[string]string{"team": "a"})
		return nil
	})
	must(err)
	if pods := PodTableOf(store); pods != nil {
		failed := withPodLabels(newPod("default", "api-1", "10.244.0.10"), map[string]string{"app": "api", "tier": "front"})
		failed.Status.Phase = corev1.PodFailed
		must(pods.Update(failed))
		must(pods.Add(newPod("default", "late", "10.244.3.10")))
	} else {
		_, err = store.UpdateStatusFunc(cluster.KindPod, "default", "api-1", func(o cluster.Object) error {
			o.(*corev1.Pod).Status.Phase = corev1.PodFailed
			return nil
		})
		must(err)
		create(newPod("default", "late", "10.244.3.10"))
	}
	_, err = store.UpdateFunc(cluster.KindService, "default", "ext", func(o cluster.Object) error {
		o.(*corev1.Service).Spec.ExternalName = "web.default.svc.cluster.local"
		return nil
	})
	must(err)
}

type question struct {
	rule  string
	name  string
	qtype uint16
}

// differentialQuestions are the table's questions and a sweep: every
// type the plugin distinguishes over every service, endpoint, port, pod,
// namespace and reverse name of the fixture, and a few malformed ones.
func differentialQuestions(v variant) []question {
	var qs []question
	for _, c := range v.cases {
		qs = append(qs, question{c.rule, c.name, c.qtype})
	}
	types := []uint16{A, AAAA, SRV, TXT, CNAME, MX, PTR, NS, SOA, HINFO, dns.TypeANY}
	names := []string{
		"cluster.local.", "svc.cluster.local.", "pod.cluster.local.", "dns-version.cluster.local.", "ns.dns.cluster.local.",
		"default.svc.cluster.local.", "ghost.svc.cluster.local.", "default.pod.cluster.local.", "other.svc.cluster.local.",
		"example.com.default.svc.cluster.local.", "example.com.svc.cluster.local.", "example.com.cluster.local.",
		"x.y.z.default.svc.cluster.local.", "_http._tcp.x.api.default.svc.cluster.local.",
		"1-2-3-4.default.pod.cluster.local.", "10-244-0-10.default.pod.cluster.local.", "fd00-10-244--10.default.pod.cluster.local.",
		"x.1-2-3-4.default.pod.cluster.local.", "_http._tcp.1-2-3-4.default.pod.cluster.local.",
		"in-addr.arpa.", "ip6.arpa.", "10.in-addr.arpa.",
	}
	services := map[string][]string{ // service -> label prefixes
		"web.default":   {"", "_http._tcp.", "10-244-6-10.", "web-1."},
		"api.default":   {"", "_http._tcp.", "_https._tcp.", "_dns._udp.", "_dns._tcp.", "10-244-0-10.", "10-244-0-11.", "10-244-0-12.", "api-1.", "api-2.", "_HTTP._TCP."},
		"db.default":    {"", "_postgres._tcp.", "db-0.", "db-1.", "db-2.", "10-244-1-10."},
		"cache.default": {"", "_redis._tcp.", "10-244-2-10.", "10-244-2-11.", "cache-abc."},
		"ext.default":   {"", "_http._tcp.", "x."}, "alias.default": {""},
		"v6.default": {"", "_http._tcp.", "fd00-10-244--10."}, "dual.default": {"", "_http._tcp.", "10-244-5-10.", "fd00-10-244--50."},
		"headless6.default": {"", "_http._tcp.", "h6.", "fd00-10-244--21."},
		"empty.default":     {"", "_http._tcp."}, "empty-headless.default": {""}, "notready.default": {"", "nr-0.", "_web._tcp."},
		"noports.default": {""}, "gone.default": {""}, "svc1.testns": {"", "_http._tcp."},
		"svc2.other": {""}, "svc3.other": {""}, "svcg.ghost": {""}, "nothere.default": {""},
	}
	for svc, prefixes := range services {
		for _, p := range prefixes {
			names = append(names, p+svc+".svc.cluster.local.")
		}
	}
	names = append(names, "Api.Default.Svc.Cluster.Local.", "_Http._Tcp.API.default.svc.cluster.local.", "DB.default.svc.CLUSTER.local.",
		"_postgres._tcp.DB.default.svc.Cluster.Local.", "Alias.Default.Svc.Cluster.Local.", "Cluster.Local.", "NS.DNS.cluster.local.", "ns.dns.Cluster.Local.", "10-244-2-10.Cache.Default.Svc.Cluster.LOCAL.",
		"DNS-VERSION.Cluster.Local.", "FD00--1.default.pod.cluster.local.", "Ext.Default.svc.cluster.local.", "svc.Cluster.Local.",
		"010-1-2-3.default.pod.cluster.local.", "1-2-3-04.default.pod.cluster.local.", "--ffff-a01-101.default.pod.cluster.local.",
		"_tcp.api.default.svc.cluster.local.", "__http._tcp.api.default.svc.cluster.local.", "http.tcp.api.default.svc.cluster.local.",
		"x.default.pod.cluster.local.", "a.b.c.d.e.f.cluster.local.", "nothere.default.svc.cluster.local.", "pod.svc.cluster.local.",
		"svc.svc.cluster.local.", "svc.pod.cluster.local.", "default.svc.svc.cluster.local.")
	for _, n := range names {
		for _, t := range types {
			qs = append(qs, question{"sweep", n, t})
		}
	}
	for _, ip := range []string{"10.96.0.20", "10.96.0.21", "10.96.0.31", "10.96.0.40", "10.96.2.10", "10.96.3.10", "10.244.0.10",
		"10.244.0.12", "10.244.1.10", "10.244.2.10", "10.244.2.11", "10.244.4.10", "10.244.9.9", "10.244.3.10", "10.1.1.1",
		"fd00:10:96::30", "fd00:10:96::31", "fd00:10:244::10", "fd00:10:244::20", "fd00:10:244::21", "fd00:10:244::50", "::ffff:10.96.0.20", "::ffff:10.244.1.10", "0.0.0.0", "255.255.255.255"} {
		for _, t := range []uint16{PTR, A, TXT} {
			qs = append(qs, question{"sweep", rev(ip), t})
		}
	}
	for _, n := range []string{"10.in-addr.arpa.", "0.96.10.in-addr.arpa.", "a.0.96.10.in-addr.arpa.", "1.0.96.10.IN-ADDR.ARPA.",
		"20.0.96.010.in-addr.arpa.", "1.20.0.96.10.in-addr.arpa.", "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.D.F.ip6.arpa.",
		"3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", "00.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.",
		"svc.in-addr.arpa.", "default.svc.in-addr.arpa.", "web.default.svc.in-addr.arpa."} {
		for _, t := range []uint16{PTR, A, TXT, SOA, NS} {
			qs = append(qs, question{"sweep", n, t})
		}
	}
	return qs
}
