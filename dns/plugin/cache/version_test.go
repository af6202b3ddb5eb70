package cache

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// versionedBackend is a backend that implements plugin.Versioned, as the
// kubernetes plugin does: one version for every name.
type versionedBackend struct {
	*backend
	ver atomic.Uint64
}

func (v *versionedBackend) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return v.backend.handler().ServeDNS(ctx, w, r)
}
func (v *versionedBackend) Name() string                { return "versioned" }
func (v *versionedBackend) Version(qname string) uint64 { return v.ver.Load() }

// newVersionedCache is newCache with a versioned backend after the cache.
func newVersionedCache(t testing.TB, corefile string, reg prometheus.Registerer, answer func(*dns.Msg) *dns.Msg) (*Cache, *clock, *versionedBackend) {
	t.Helper()
	vb := &versionedBackend{backend: &backend{answer: answer}}
	vb.ver.Store(1)
	c, clk := newCache(t, corefile, reg, vb.backend)
	c.Next = vb
	c.FollowVersions([]plugin.Handler{c, vb})
	return c, clk, vb
}

func aAnswer(ip string) func(r *dns.Msg) *dns.Msg {
	return func(r *dns.Msg) *dns.Msg {
		return reply(r, dns.RcodeSuccess, []dns.RR{rr(r.Question[0].Name + " 60 IN A " + ip)}, nil, nil)
	}
}

func nxAnswer(r *dns.Msg) *dns.Msg {
	return reply(r, dns.RcodeNameError, nil, []dns.RR{soa("cluster.local.", 30)}, nil)
}

// TestVersionedEntries: an entry stored under one version of its name is
// served while the version holds, and dropped (a miss, the next plugin
// asked) once it changes: "Records follow the store: a service created,
// changed or deleted is answered accordingly within one second" even
// behind `cache 30`. serve_stale never serves such an entry: CoreDNS
// serves stale data only when the source cannot answer, and a changed
// version means the source has newer data.
func TestVersionedEntries(t *testing.T) {
	tests := []struct {
		name      string
		corefile  string
		first     func(*dns.Msg) *dns.Msg
		after     time.Duration // clock advance before the second query
		bump      bool          // the version changes before the second query
		second    func(*dns.Msg) *dns.Msg
		wantRcode int
		wantIP    string // "" for no answer record
		wantCalls int64  // backend calls in all
		wantHits  float64
	}{
		{"same version: a hit", "cache 30", aAnswer("192.0.2.1"), time.Second, false, aAnswer("192.0.2.2"),
			dns.RcodeSuccess, "192.0.2.1", 1, 1},
		{"deleted: a positive entry of an older version is a miss", "cache 30", aAnswer("192.0.2.1"), time.Second, true, nxAnswer,
			dns.RcodeNameError, "", 2, 0},
		{"changed: the new answer replaces the entry", "cache 30", aAnswer("192.0.2.1"), time.Second, true, aAnswer("192.0.2.2"),
			dns.RcodeSuccess, "192.0.2.2", 2, 0},
		{"created: a denial of an older version is a miss", "cache 30", nxAnswer, time.Second, true, aAnswer("192.0.2.2"),
			dns.RcodeSuccess, "192.0.2.2", 2, 0},
		{"serve_stale immediate: an expired entry of the same version is served stale", "cache 30 {\nserve_stale\n}",
			aAnswer("192.0.2.1"), 90 * time.Second, false, aAnswer("192.0.2.2"), dns.RcodeSuccess, "192.0.2.1", 2, 1}, // and refreshed in the background
		{"serve_stale immediate: an expired entry of an older version is not served", "cache 30 {\nserve_stale\n}",
			aAnswer("192.0.2.1"), 90 * time.Second, true, aAnswer("192.0.2.2"), dns.RcodeSuccess, "192.0.2.2", 2, 0},
		{"serve_stale verify: a failing source does not get an entry of an older version", "cache 30 {\nserve_stale 1h verify\n}",
			aAnswer("192.0.2.1"), 90 * time.Second, true, func(r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeServerFailure, nil, nil, nil) },
			dns.RcodeServerFailure, "", 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c, clk, vb := newVersionedCache(t, tc.corefile, reg, tc.first)
			ask(t, c, newWriter(false), query("web.default.svc.cluster.local.", dns.TypeA))
			clk.advance(tc.after)
			vb.answer = tc.second
			if tc.bump {
				vb.ver.Add(1)
			}
			m := ask(t, c, newWriter(false), query("web.default.svc.cluster.local.", dns.TypeA))
			if m == nil {
				t.Fatal("no answer")
			}
			if m.Rcode != tc.wantRcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.wantRcode])
			}
			ip := ""
			if len(m.Answer) == 1 {
				ip = m.Answer[0].(*dns.A).A.String()
			}
			if ip != tc.wantIP {
				t.Errorf("answer %v, want %q", m.Answer, tc.wantIP)
			}
			// A background refresh (serve_stale immediate) may still run.
			deadline := time.Now().Add(5 * time.Second)
			for vb.calls.Load() < tc.wantCalls && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if n := vb.calls.Load(); n != tc.wantCalls {
				t.Errorf("the next plugin was asked %d times, want %d", n, tc.wantCalls)
			}
			if v := max(metricValue(t, reg, "coredns_cache_hits_total", map[string]string{"type": Success}), 0) +
				max(metricValue(t, reg, "coredns_cache_hits_total", map[string]string{"type": Denial}), 0); v != tc.wantHits {
				t.Errorf("coredns_cache_hits_total %v, want %v", v, tc.wantHits)
			}
			// The new answer is cached under the new version.
			if tc.bump && tc.wantRcode != dns.RcodeServerFailure {
				before := vb.calls.Load()
				m2 := ask(t, c, newWriter(false), query("web.default.svc.cluster.local.", dns.TypeA))
				if vb.calls.Load() != before || m2.Rcode != m.Rcode {
					t.Errorf("the refreshed answer is not served from the cache: %d calls, rcode %s", vb.calls.Load()-before, dns.RcodeToString[m2.Rcode])
				}
			}
		})
	}
}

// TestVersionedPrefetch: a prefetched entry carries the version read when
// the refresh started, so it is a hit afterwards.
func TestVersionedPrefetch(t *testing.T) {
	ip := atomic.Value{}
	ip.Store("192.0.2.1")
	c, clk, vb := newVersionedCache(t, "cache {\nprefetch 2 10m 20%\n}", nil, func(r *dns.Msg) *dns.Msg {
		return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 100 IN A " + ip.Load().(string))}, nil, nil)
	})
	q := query("example.org.", dns.TypeA)
	ask(t, c, newWriter(false), q)
	clk.advance(10 * time.Second)
	ask(t, c, newWriter(false), q)
	ip.Store("192.0.2.2")
	clk.advance(75 * time.Second)
	ask(t, c, newWriter(false), q) // TTL 15 <= 20: prefetch
	deadline := time.Now().Add(5 * time.Second)
	var m *dns.Msg
	for time.Now().Before(deadline) {
		m = ask(t, c, newWriter(false), q)
		if m.Answer[0].(*dns.A).A.String() == "192.0.2.2" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := m.Answer[0].(*dns.A).A.String(); got != "192.0.2.2" {
		t.Fatalf("no prefetched answer: %s", got)
	}
	n := vb.calls.Load()
	m = ask(t, c, newWriter(false), q)
	if vb.calls.Load() != n || m.Answer[0].(*dns.A).A.String() != "192.0.2.2" {
		t.Errorf("the prefetched entry is not a hit: %d more calls, answer %v", vb.calls.Load()-n, m.Answer)
	}
}

// TestFollowVersions: only the Versioned handlers after the cache in its
// chain count; one before it does not make the cache's answers.
func TestFollowVersions(t *testing.T) {
	before := &versionedBackend{backend: &backend{}}
	after := &versionedBackend{backend: &backend{answer: aAnswer("192.0.2.1")}}
	plain := plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		return after.ServeDNS(ctx, w, r)
	})
	c, _ := newCache(t, "cache", nil, after.backend)
	c.Next = plain
	c.FollowVersions([]plugin.Handler{before, c, plain, after})
	if len(c.versioned) != 1 || c.versioned[0] != plugin.Versioned(after) {
		t.Fatalf("versioned handlers: %v, want the one after the cache", c.versioned)
	}
	q := query("web.default.svc.cluster.local.", dns.TypeA)
	ask(t, c, newWriter(false), q)
	before.ver.Add(1)
	ask(t, c, newWriter(false), q)
	if n := after.calls.Load(); n != 1 {
		t.Errorf("a version before the cache invalidated the entry: %d calls", n)
	}
	after.ver.Add(1)
	ask(t, c, newWriter(false), q)
	if n := after.calls.Load(); n != 2 {
		t.Errorf("a version after the cache did not invalidate the entry: %d calls", n)
	}
}

// TestVersionedHitAllocs: checking the version keeps a hit free of
// allocations.
func TestVersionedHitAllocs(t *testing.T) {
	c, _, _ := newVersionedCache(t, "cache", nil, aAnswer("192.0.2.1"))
	q := query("web.default.svc.cluster.local.", dns.TypeA)
	w := newNullWriter()
	c.ServeDNS(context.Background(), w, q)
	if n := testing.AllocsPerRun(100, func() { c.ServeDNS(context.Background(), w, q) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
}

// BenchmarkHitVersioned: BenchmarkHit/A with a versioned plugin after the
// cache (a trivial Version: the cost of the check itself).
func BenchmarkHitVersioned(b *testing.B) {
	c, _, _ := newVersionedCache(b, "cache", nil, aAnswer("192.0.2.1"))
	q := query("WwW.example.org.", dns.TypeA)
	w := newNullWriter()
	ctx := context.Background()
	c.ServeDNS(ctx, w, q)
	b.ReportAllocs()
	for b.Loop() {
		c.ServeDNS(ctx, w, q)
	}
}
