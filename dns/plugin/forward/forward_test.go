package forward

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// A query goes to the upstream and its answer comes back to the client
// with the client's ID, over the client's protocol.
func TestForwardAnswers(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1"))
	reg := prometheus.NewRegistry()
	f := newForward(t, "forward . "+up.Addr, reg)[0]

	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp=%v", tcp), func(t *testing.T) {
			q := query("Example.ORG.", dns.TypeA)
			q.Id = 4242
			w := &writer{tcp: tcp}
			m, rc, err := serve(f, w, q)
			if err != nil || rc != 0 {
				t.Fatalf("rcode %d err %v", rc, err)
			}
			if m == nil || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
				t.Fatalf("answer %v", m)
			}
			if m.Id != 4242 {
				t.Errorf("answer ID %d, want the client's 4242", m.Id)
			}
			if q.Id != 4242 {
				t.Errorf("the query's ID was changed to %d", q.Id)
			}
			s := up.Seen()
			last := s[len(s)-1]
			want := "udp"
			if tcp {
				want = "tcp"
			}
			if last.proto != want {
				t.Errorf("upstream saw %s, want %s", last.proto, want)
			}
		})
	}
	// coredns_proxy_request_duration_seconds{proxy_name="forward",to,rcode}
	if n := metricValue(t, reg, "coredns_proxy_request_duration_seconds", map[string]string{"proxy_name": "forward", "to": up.Addr, "rcode": "NOERROR"}); n != 2 {
		t.Errorf("coredns_proxy_request_duration_seconds count %v, want 2", n)
	}
}

// "random query IDs per upstream query": the upstream never sees the
// client's ID, and the IDs vary.
func TestRandomQueryIDs(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1"))
	f := newForward(t, "forward . "+up.Addr, nil)[0]
	const n = 32
	for range n {
		q := query("example.org.", dns.TypeA)
		q.Id = 7
		if _, _, err := serve(f, &writer{}, q); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[uint16]bool{}
	for _, s := range up.Seen() {
		ids[s.id] = true
	}
	if ids[7] && len(ids) == 1 {
		t.Fatal("upstream saw the client's ID")
	}
	// 32 draws from 65536 values: at least 16 distinct is certain for a
	// random source (a counter or constant would fail).
	if len(ids) < n/2 {
		t.Errorf("only %d distinct IDs in %d queries", len(ids), n)
	}
}

// "The forward plugin re-uses already opened sockets to the upstreams"
// (expire: cached connections are closed after DURATION unused).
func TestConnectionReuseAndExpire(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1"))
	reg := prometheus.NewRegistry()
	fs := newForward(t, "forward . "+up.Addr+" {\nexpire 200ms\n}\n", reg)
	f := fs[0]
	for range 3 {
		if _, _, err := serve(f, &writer{}, query("example.org.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{"proxy_name": "forward", "to": up.Addr, "proto": "udp"}
	if h := metricValue(t, reg, "coredns_proxy_conn_cache_hits_total", labels); h != 2 {
		t.Errorf("conn cache hits %v, want 2", h)
	}
	if m := metricValue(t, reg, "coredns_proxy_conn_cache_misses_total", labels); m != 1 {
		t.Errorf("conn cache misses %v, want 1", m)
	}
	srcs := map[string]bool{}
	for _, s := range up.Seen() {
		srcs[s.src] = true
	}
	if len(srcs) != 1 {
		t.Errorf("reused connection should keep its source port: %v", srcs)
	}
	time.Sleep(250 * time.Millisecond) // past expire
	if _, _, err := serve(f, &writer{}, query("example.org.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if m := metricValue(t, reg, "coredns_proxy_conn_cache_misses_total", labels); m != 2 {
		t.Errorf("after expire: conn cache misses %v, want 2", m)
	}
	srcs = map[string]bool{}
	for _, s := range up.Seen() {
		srcs[s.src] = true
	}
	if len(srcs) != 2 {
		t.Errorf("an expired connection must be replaced by a new socket (new source port): %v", srcs)
	}
}

// "If response is truncated (TC flag set in response) then do another
// attempt over TCP" (prefer_udp); without it the TC answer goes to the
// client, which retries over TCP itself.
func TestTruncation(t *testing.T) {
	// Over UDP the upstream answers TC without records; over TCP in full.
	h := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if _, ok := w.RemoteAddr().(*net.UDPAddr); ok {
			m.Truncated = true
		} else {
			rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.9")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	}
	up := startUpstream(t, h)
	tests := []struct {
		name      string
		opts      string
		clientTCP bool
		wantTC    bool
		wantProto []string
	}{
		{"UDP client: the TC answer is passed on", "", false, true, []string{"udp"}},
		{"TCP client: asked over TCP", "", true, false, []string{"tcp"}},
		{"prefer_udp with a TCP client: UDP first, TCP after TC", "prefer_udp", true, false, []string{"udp", "tcp"}},
		{"force_tcp with a UDP client: TCP only", "force_tcp", false, false, []string{"tcp"}},
		{"force_tcp takes precedence over prefer_udp", "force_tcp\nprefer_udp", false, false, []string{"tcp"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newForward(t, "forward . "+up.Addr+" {\n"+tc.opts+"\n}\n", nil)[0]
			before := len(up.Seen())
			name := fmt.Sprintf("t%d.example.org.", rand.IntN(1e9))
			m, _, err := serve(f, &writer{tcp: tc.clientTCP}, query(name, dns.TypeA))
			if err != nil {
				t.Fatal(err)
			}
			if m.Truncated != tc.wantTC {
				t.Errorf("TC %v, want %v", m.Truncated, tc.wantTC)
			}
			var protos []string
			for _, s := range up.Seen()[before:] {
				protos = append(protos, s.proto)
			}
			if fmt.Sprint(protos) != fmt.Sprint(tc.wantProto) {
				t.Errorf("upstream saw %v, want %v", protos, tc.wantProto)
			}
		})
	}
}

// An upstream sending more than the client's buffer over UDP gets the
// client "an empty response with TC bit set" (CoreDNS pkg/proxy).
func TestOversizedUDPAnswer(t *testing.T) {
	h := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for i := range 40 {
			rr, _ := dns.NewRR(fmt.Sprintf("%s 60 IN A 192.0.2.%d", r.Question[0].Name, i))
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m) // no truncation: misbehaving
	}
	up := startUpstream(t, h)
	f := newForward(t, "forward . "+up.Addr, nil)[0]
	m, _, err := serve(f, &writer{}, query("big.example.org.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Truncated || len(m.Answer) != 0 {
		t.Errorf("TC %v with %d answers; want TC and none", m.Truncated, len(m.Answer))
	}
	m, _, err = serve(f, &writer{tcp: true}, query("big.example.org.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if m.Truncated || len(m.Answer) != 40 {
		t.Errorf("over TCP: TC %v with %d answers; want all 40", m.Truncated, len(m.Answer))
	}
}

// "Check if the reply is correct; if not return FormErr."
func TestMismatchedAnswerIsFormerr(t *testing.T) {
	h := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Question[0].Name = "other.example."
		w.WriteMsg(m)
	}
	up := startUpstream(t, h)
	f := newForward(t, "forward . "+up.Addr, nil)[0]
	q := query("example.org.", dns.TypeA)
	m, rc, err := serve(f, &writer{}, q)
	if err != nil || rc != 0 {
		t.Fatalf("rc %d err %v", rc, err)
	}
	if m.Rcode != dns.RcodeFormatError || m.Id != q.Id {
		t.Errorf("rcode %s id %d, want FORMERR with the client's id %d", dns.RcodeToString[m.Rcode], m.Id, q.Id)
	}
}

// "IGNORED_NAMES in except is a space-separated list of domains to exclude
// from forwarding": those go to the next plugin; names outside FROM too.
func TestExceptAndFrom(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1"))
	f := newForward(t, "forward example.org "+up.Addr+" {\nexcept internal.example.org\n}\n", nil)[0]
	nextCalled := 0
	f.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		nextCalled++
		return dns.RcodeNameError, nil
	})
	tests := []struct {
		name      string
		forwarded bool
	}{
		{"www.example.org.", true},
		{"example.org.", true},
		{"a.internal.example.org.", false},
		{"internal.example.org.", false},
		{"example.com.", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, nb := up.count(tc.name), nextCalled
			serve(f, &writer{}, query(tc.name, dns.TypeA))
			forwarded := up.count(tc.name) > before
			if forwarded != tc.forwarded {
				t.Errorf("forwarded %v, want %v", forwarded, tc.forwarded)
			}
			if (nextCalled > nb) == tc.forwarded {
				t.Errorf("next plugin called %v", nextCalled > nb)
			}
		})
	}
}

// policy random|round_robin|sequential.
func TestPolicy(t *testing.T) {
	tests := []struct {
		policy string
		check  func(t *testing.T, firsts []int)
	}{
		{"sequential", func(t *testing.T, firsts []int) {
			for i, f := range firsts {
				if f != 0 {
					t.Fatalf("query %d went to upstream %d first", i, f)
				}
			}
		}},
		{"round_robin", func(t *testing.T, firsts []int) {
			for i := 1; i < len(firsts); i++ {
				if firsts[i] != (firsts[i-1]+1)%3 {
					t.Fatalf("not round robin: %v", firsts)
				}
			}
		}},
		{"random", func(t *testing.T, firsts []int) {
			seen := map[int]bool{}
			for _, f := range firsts {
				seen[f] = true
			}
			if len(seen) != 3 {
				t.Fatalf("random used %v of 3 upstreams in %d queries", seen, len(firsts))
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			ups := []*upstream{startUpstream(t, answerA("192.0.2.1")), startUpstream(t, answerA("192.0.2.2")), startUpstream(t, answerA("192.0.2.3"))}
			f := newForward(t, fmt.Sprintf("forward . %s %s %s {\npolicy %s\n}\n", ups[0].Addr, ups[1].Addr, ups[2].Addr, tc.policy), nil)[0]
			var firsts []int
			for i := range 60 {
				name := fmt.Sprintf("q%d.example.org.", i)
				serve(f, &writer{}, query(name, dns.TypeA))
				for j, u := range ups {
					if u.count(name) > 0 {
						firsts = append(firsts, j)
					}
				}
			}
			if len(firsts) != 60 {
				t.Fatalf("%d answered queries", len(firsts))
			}
			tc.check(t, firsts)
		})
	}
}

// "If the RCODE (i.e. NXDOMAIN) is returned by the remote then execute the
// next plugin" when it is a forward too; "failover": try the next upstream
// on RCODE.
func TestNextAndFailover(t *testing.T) {
	nx := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
	}
	sf := func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		w.WriteMsg(m)
	}
	upNX := startUpstream(t, nx)
	upSF := startUpstream(t, sf)
	upOK := startUpstream(t, answerA("192.0.2.7"))

	t.Run("next NXDOMAIN goes to the next forward", func(t *testing.T) {
		fs := newForward(t, "forward . "+upNX.Addr+" {\nnext NXDOMAIN\n}\nforward . "+upOK.Addr+"\n", nil)
		m, _, _ := serve(fs[0], &writer{}, query("n.example.org.", dns.TypeA))
		if m == nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			t.Fatalf("answer %v", m)
		}
	})
	t.Run("next is ignored when the next plugin is not a forward", func(t *testing.T) {
		f := newForward(t, "forward . "+upNX.Addr+" {\nnext NXDOMAIN\n}\n", nil)[0]
		f.Next = plugin.HandlerFunc(func(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
			t.Error("next plugin called")
			return 0, nil
		})
		m, _, _ := serve(f, &writer{}, query("n2.example.org.", dns.TypeA))
		if m == nil || m.Rcode != dns.RcodeNameError {
			t.Fatalf("answer %v", m)
		}
	})
	t.Run("failover SERVFAIL tries the next upstream", func(t *testing.T) {
		f := newForward(t, "forward . "+upSF.Addr+" "+upOK.Addr+" {\npolicy sequential\nfailover SERVFAIL\n}\n", nil)[0]
		m, _, _ := serve(f, &writer{}, query("f.example.org.", dns.TypeA))
		if m == nil || m.Rcode != dns.RcodeSuccess {
			t.Fatalf("answer %v", m)
		}
	})
	t.Run("failover: when all upstreams were tried the last answer is returned", func(t *testing.T) {
		f := newForward(t, "forward . "+upSF.Addr+" "+upSF.Addr+" {\npolicy sequential\nfailover SERVFAIL\n}\n", nil)[0]
		m, _, _ := serve(f, &writer{}, query("f2.example.org.", dns.TypeA))
		if m == nil || m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("answer %v", m)
		}
	})
	t.Run("without failover a SERVFAIL answer is returned", func(t *testing.T) {
		f := newForward(t, "forward . "+upSF.Addr+" "+upOK.Addr+" {\npolicy sequential\n}\n", nil)[0]
		m, _, _ := serve(f, &writer{}, query("f3.example.org.", dns.TypeA))
		if m == nil || m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("answer %v", m)
		}
	})
}

// "max_concurrent MAX will limit the number of concurrent queries to MAX.
// Any new query that would raise the number of concurrent queries above
// the MAX will result in a REFUSED response."
func TestMaxConcurrent(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(1)
	var once sync.Once
	h := func(w dns.ResponseWriter, r *dns.Msg) {
		if r.Question[0].Name == "slow.example.org." {
			once.Do(arrived.Done)
			<-release
		}
		answerA("192.0.2.1")(w, r)
	}
	up := startUpstream(t, h)
	reg := prometheus.NewRegistry()
	f := newForward(t, "forward . "+up.Addr+" {\nmax_concurrent 1\n}\n", reg)[0]

	done := make(chan error, 1)
	go func() {
		_, _, err := serve(f, &writer{}, query("slow.example.org.", dns.TypeA))
		done <- err
	}()
	arrived.Wait()
	_, rc, err := serve(f, &writer{}, query("fast.example.org.", dns.TypeA))
	if rc != dns.RcodeRefused || err == nil {
		t.Errorf("second concurrent query: rcode %d err %v, want REFUSED and an error", rc, err)
	}
	if v := metricValue(t, reg, "coredns_forward_max_concurrent_rejects_total", nil); v != 1 {
		t.Errorf("coredns_forward_max_concurrent_rejects_total %v, want 1", v)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, rc, err := serve(f, &writer{}, query("fast.example.org.", dns.TypeA)); rc != 0 || err != nil {
		t.Errorf("after the slow query: rcode %d err %v", rc, err)
	}
}

// "When it detects an error a health check is performed ... (. IN NS)";
// "max_fails is the number of subsequent failed health checks that are
// needed before considering an upstream to be down"; "When all upstreams
// are down it assumes health checking as a mechanism has failed and will
// try to connect to a random upstream"; failfast_all_unhealthy_upstreams
// answers SERVFAIL instead.
func TestHealthChecks(t *testing.T) {
	t.Run("an error starts . IN NS health checks with RD", func(t *testing.T) {
		var drop atomic.Bool
		drop.Store(true)
		h := func(w dns.ResponseWriter, r *dns.Msg) {
			if r.Question[0].Name != "." && drop.Swap(false) {
				return // drop the first query
			}
			answerA("192.0.2.1")(w, r)
		}
		up := startUpstream(t, h)
		f := newForward(t, "forward . "+up.Addr+" {\nhealth_check 50ms\n}\n", nil)[0]
		f.proxies[0].readTimeout = 100 * time.Millisecond
		m, _, err := serve(f, &writer{}, query("example.org.", dns.TypeA))
		if err != nil || m == nil || len(m.Answer) != 1 {
			t.Fatalf("the retry should have answered: %v %v", m, err)
		}
		eventually(t, "a health check", func() bool {
			for _, s := range up.Seen() {
				if s.q.Name == "." && s.q.Qtype == dns.TypeNS && s.rd {
					return true
				}
			}
			return false
		})
	})
	t.Run("health_check no_rec domain FQDN", func(t *testing.T) {
		up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
			if r.Question[0].Qtype == dns.TypeNS {
				answerA("192.0.2.1")(w, r)
			}
		})
		f := newForward(t, "forward . "+up.Addr+" {\nhealth_check 50ms no_rec domain example.net\n}\n", nil)[0]
		f.proxies[0].readTimeout = 50 * time.Millisecond
		f.timeout = 200 * time.Millisecond
		serve(f, &writer{}, query("example.org.", dns.TypeA))
		eventually(t, "a health check for example.net. without RD", func() bool {
			for _, s := range up.Seen() {
				if s.q.Name == "example.net." && s.q.Qtype == dns.TypeNS && !s.rd {
					return true
				}
			}
			return false
		})
	})

	// A dead upstream: a bound UDP socket that never answers (and TCP
	// refused); queries tells how many queries other than health checks
	// reached it.
	dead := func(t *testing.T) (addr string, queries func() int64) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		var n atomic.Int64
		go func() {
			buf := make([]byte, 4096)
			for {
				k, _, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				m := new(dns.Msg)
				if m.Unpack(buf[:k]) == nil && len(m.Question) == 1 && m.Question[0].Qtype != dns.TypeNS {
					n.Add(1)
				}
			}
		}()
		return pc.LocalAddr().String(), n.Load
	}

	t.Run("max_fails failed checks mark the upstream down; all down: a random one is tried", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		addr, _ := dead(t)
		f := newForward(t, "forward . "+addr+" {\nmax_fails 2\nhealth_check 20ms\n}\n", reg)[0]
		p := f.proxies[0]
		p.readTimeout = 30 * time.Millisecond
		p.health.c.ReadTimeout = 30 * time.Millisecond
		f.timeout = 100 * time.Millisecond
		_, rc, err := serve(f, &writer{}, query("example.org.", dns.TypeA))
		if rc != dns.RcodeServerFailure || err == nil {
			t.Fatalf("rcode %d err %v, want SERVFAIL with the upstream's error", rc, err)
		}
		eventually(t, "the upstream to be down", func() bool { return p.Down(2) })
		if v := metricValue(t, reg, "coredns_proxy_healthcheck_failures_total", map[string]string{"proxy_name": "forward", "to": addr}); v < 3 {
			t.Errorf("coredns_proxy_healthcheck_failures_total %v, want > max_fails", v)
		}
		before := metricValue(t, reg, "coredns_forward_healthcheck_broken_total", nil)
		serve(f, &writer{}, query("example.org.", dns.TypeA))
		if v := metricValue(t, reg, "coredns_forward_healthcheck_broken_total", nil); v <= before {
			t.Errorf("coredns_forward_healthcheck_broken_total %v, want > %v", v, before)
		}
	})

	t.Run("failfast_all_unhealthy_upstreams: SERVFAIL without asking", func(t *testing.T) {
		addr, queries := dead(t)
		f := newForward(t, "forward . "+addr+" {\nmax_fails 1\nhealth_check 20ms\nfailfast_all_unhealthy_upstreams\n}\n", nil)[0]
		p := f.proxies[0]
		p.readTimeout = 30 * time.Millisecond
		p.health.c.ReadTimeout = 30 * time.Millisecond
		f.timeout = 100 * time.Millisecond
		serve(f, &writer{}, query("example.org.", dns.TypeA))
		eventually(t, "the upstream to be down", func() bool { return p.Down(1) })
		eventually(t, "the first query to arrive", func() bool { return queries() > 0 })
		before := queries()
		_, rc, err := serve(f, &writer{}, query("example.org.", dns.TypeA))
		if rc != dns.RcodeServerFailure || err != ErrNoHealthy {
			t.Errorf("rcode %d err %v, want SERVFAIL, %v", rc, err, ErrNoHealthy)
		}
		time.Sleep(50 * time.Millisecond) // a query sent would have arrived
		if queries() != before {
			t.Errorf("failfast still asked the down upstream")
		}
	})

	t.Run("a healthy upstream is preferred over a down one", func(t *testing.T) {
		up := startUpstream(t, answerA("192.0.2.1"))
		addr, queries := dead(t)
		f := newForward(t, "forward . "+addr+" "+up.Addr+" {\npolicy sequential\nmax_fails 1\n}\n", nil)[0]
		atomic.StoreUint32(&f.proxies[0].fails, 5)
		m, _, err := serve(f, &writer{}, query("example.org.", dns.TypeA))
		if err != nil || m == nil || len(m.Answer) != 1 {
			t.Fatalf("answer %v err %v", m, err)
		}
		time.Sleep(50 * time.Millisecond)
		if queries() != 0 {
			t.Errorf("the down upstream was tried")
		}
	})

	t.Run("max_fails 0: never down, never checked", func(t *testing.T) {
		addr, _ := dead(t)
		f := newForward(t, "forward . "+addr+" {\nmax_fails 0\n}\n", nil)[0]
		p := f.proxies[0]
		p.readTimeout = 20 * time.Millisecond
		f.timeout = 60 * time.Millisecond
		serve(f, &writer{}, query("example.org.", dns.TypeA))
		if p.Fails() != 0 || p.Down(0) {
			t.Errorf("fails %d", p.Fails())
		}
	})
}

// "forward . /etc/resolv.conf": the nameservers of a resolv.conf file
// (port 53) are the upstreams. The upstream listens on port 53 of a
// loopback address of its own.
func TestResolvConfUpstream(t *testing.T) {
	var up *upstream
	for attempt := 0; attempt < 10 && up == nil; attempt++ {
		ip := fmt.Sprintf("127.%d.%d.%d", 100+rand.IntN(100), rand.IntN(250), 1+rand.IntN(250))
		pc, err := net.ListenPacket("udp", ip+":53")
		if err != nil {
			if attempt == 9 {
				t.Skipf("cannot bind port 53 on loopback (%v): needs root or CAP_NET_BIND_SERVICE", err)
			}
			continue
		}
		pc.Close()
		up = startUpstreamOn(t, ip, "53", answerA("192.0.2.53"))
	}
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("search example.org\nnameserver "+up.Addr[:len(up.Addr)-3]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newForward(t, "forward . "+path, nil)[0]
	m, _, err := serve(f, &writer{}, query("host.example.org.", dns.TypeA))
	if err != nil || m == nil || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.53" {
		t.Fatalf("answer %v err %v", m, err)
	}
}

// Stopping closes pooled connections and refuses new ones.
func TestShutdown(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1"))
	fs, err := parseForward(controller("forward . "+up.Addr, nil))
	if err != nil {
		t.Fatal(err)
	}
	f := fs[0]
	f.OnStartup()
	if _, _, err := serve(f, &writer{}, query("example.org.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	f.OnShutdown()
	tr := f.proxies[0].transport
	tr.mu.Lock()
	n := len(tr.conns[typeUDP])
	tr.mu.Unlock()
	if n != 0 {
		t.Errorf("%d pooled connections after shutdown", n)
	}
	f.timeout = 50 * time.Millisecond
	if _, rc, err := serve(f, &writer{}, query("example.org.", dns.TypeA)); rc != dns.RcodeServerFailure || err == nil {
		t.Errorf("after shutdown: rcode %d err %v", rc, err)
	}
}

// A misbehaving upstream (garbage, a short packet, another ID, a reply
// without the QR bit) never panics: the client gets FORMERR, SERVFAIL or
// a valid answer.
func TestUpstreamGarbage(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(q []byte) []byte
		rcode   int  // the rcode returned (0: written)
		wrote   bool // an answer was written
		formerr bool
	}{
		{"three bytes", func(q []byte) []byte { return []byte{q[0], q[1], 0x80} }, dns.RcodeServerFailure, false, false},
		{"another ID only", func(q []byte) []byte { b := append([]byte(nil), q...); b[0] ^= 0xff; b[2] |= 0x80; return b }, dns.RcodeServerFailure, false, false},
		{"the query echoed without QR", func(q []byte) []byte { return append([]byte(nil), q...) }, 0, true, true},
		// miekg/dns reads what is there (as CoreDNS does)
		{"a header claiming records that are not there", func(q []byte) []byte {
			b := append([]byte(nil), q...)
			b[2] |= 0x80
			b[7] = 5
			return b
		}, 0, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 4096)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					pc.WriteTo(tc.answer(buf[:n]), from)
				}
			}()
			f := newForward(t, "forward . "+pc.LocalAddr().String()+" {\nmax_fails 0\n}\n", nil)[0]
			f.proxies[0].readTimeout = 50 * time.Millisecond
			f.timeout = 120 * time.Millisecond
			w := &writer{}
			m, rc, _ := serve(f, w, query("example.org.", dns.TypeA))
			if rc != tc.rcode || (m != nil) != tc.wrote {
				t.Fatalf("rcode %d wrote %v, want %d %v", rc, m != nil, tc.rcode, tc.wrote)
			}
			if tc.formerr && m.Rcode != dns.RcodeFormatError {
				t.Errorf("rcode %s, want FORMERR", dns.RcodeToString[m.Rcode])
			}
			if tc.wrote && !tc.formerr && (m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0) {
				t.Errorf("answer %v", m)
			}
		})
	}
}

// A pooled TCP connection the upstream has closed meanwhile ("cached
// connection was closed by peer") is replaced without failing the query.
func TestClosedPooledTCPConnection(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1"), func(s *dns.Server) {
		s.IdleTimeout = func() time.Duration { return 20 * time.Millisecond }
	})
	reg := prometheus.NewRegistry()
	f := newForward(t, "forward . "+up.Addr+" {\nforce_tcp\n}\n", reg)[0]
	for i := range 3 {
		m, rc, err := serve(f, &writer{}, query("example.org.", dns.TypeA))
		if err != nil || rc != 0 || len(m.Answer) != 1 {
			t.Fatalf("query %d: rcode %d err %v", i, rc, err)
		}
		time.Sleep(60 * time.Millisecond) // the upstream closes the idle connection
	}
	labels := map[string]string{"proxy_name": "forward", "to": up.Addr, "proto": "tcp"}
	if h := metricValue(t, reg, "coredns_proxy_conn_cache_hits_total", labels); h < 2 {
		t.Errorf("closed connections were not taken from the pool (%v hits): the test proves nothing", h)
	}
}
