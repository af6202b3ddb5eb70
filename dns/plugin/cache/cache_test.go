package cache

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// "keys as CoreDNS (hash of qname lower-case, qtype, DO, CD)": the same
// entry for any letter case, another for another qtype, DO or CD.
func TestKey(t *testing.T) {
	base := hash("example.org.", dns.TypeA, false, false)
	tests := []struct {
		name   string
		qtype  uint16
		do, cd bool
		same   bool
	}{
		{"example.org.", dns.TypeA, false, false, true},
		{"Example.ORG.", dns.TypeA, false, false, true},
		{"EXAMPLE.ORG.", dns.TypeA, false, false, true},
		{"example.org.", dns.TypeAAAA, false, false, false},
		{"example.org.", dns.TypeA, true, false, false},
		{"example.org.", dns.TypeA, false, true, false},
		{"example.org.", dns.TypeA, true, true, false},
		{"example.com.", dns.TypeA, false, false, false},
		{"example.org", dns.TypeA, false, false, false},
	}
	for _, tc := range tests {
		if got := hash(tc.name, tc.qtype, tc.do, tc.cd) == base; got != tc.same {
			t.Errorf("hash(%q, %d, %v, %v) same as example.org. A: %v, want %v", tc.name, tc.qtype, tc.do, tc.cd, got, tc.same)
		}
	}
	long := strings.Repeat("\\065", 60) + "."
	if hash(long, dns.TypeA, false, false) != hash(strings.ToUpper(long), dns.TypeA, false, false) {
		t.Error("long escaped names: case must not matter")
	}
}

func soa(zone string, ttl uint32) dns.RR {
	return rr(fmt.Sprintf("%s %d IN SOA ns.%s hostmaster.%s 1 7200 1800 86400 30", zone, ttl, zone, zone))
}

// What is cached, for how long, and what a hit looks like. The TTL
// column is the TTL of every record in the answer written when the entry
// is stored and then 10s later from the cache.
func TestCacheInsertion(t *testing.T) {
	type answerFunc func(r *dns.Msg) *dns.Msg
	tests := []struct {
		name      string
		corefile  string
		qname     string
		qtype     uint16
		answer    answerFunc
		cached    bool   // the second query does not reach the backend
		cacheType string // "success" or "denial"
		ttl       uint32 // TTL in the first answer
	}{
		{name: "NOERROR is cached with its lowest TTL", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 300 IN A 192.0.2.1"), rr("example.org. 200 IN A 192.0.2.2")}, nil, nil)
			}, cached: true, cacheType: Success, ttl: 200},
		{name: "success TTL is capped at 3600 by default", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 86400 IN A 192.0.2.1")}, nil, nil)
			}, cached: true, cacheType: Success, ttl: 3600},
		{name: "cache TTL: max TTL in seconds", corefile: "cache 30", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 300 IN A 192.0.2.1")}, nil, nil)
			}, cached: true, cacheType: Success, ttl: 30},
		{name: "MINTTL (default 5) raises a low TTL", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 1 IN A 192.0.2.1")}, nil, nil)
			}, cached: true, cacheType: Success, ttl: 5},
		{name: "success CAPACITY TTL MINTTL", corefile: "cache {\nsuccess 1000 100 50\n}", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 20 IN A 192.0.2.1")}, nil, nil)
			}, cached: true, cacheType: Success, ttl: 50},
		{name: "NXDOMAIN is cached with the SOA record's TTL (CoreDNS MinimalTTL)", corefile: "cache", qname: "nx.example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeNameError, nil, []dns.RR{soa("example.org.", 60)}, nil)
			}, cached: true, cacheType: Denial, ttl: 60},
		{name: "denial TTL is capped at 1800 by default", corefile: "cache", qname: "nx.example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeNameError, nil, []dns.RR{soa("example.org.", 7200)}, nil)
			}, cached: true, cacheType: Denial, ttl: 1800},
		{name: "NODATA is a denial", corefile: "cache", qname: "example.org.", qtype: dns.TypeAAAA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, nil, []dns.RR{soa("example.org.", 40)}, nil)
			}, cached: true, cacheType: Denial, ttl: 40},
		{name: "SERVFAIL is cached for servfail DURATION (5s)", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeServerFailure, nil, nil, nil) },
			cached: true, cacheType: Denial, ttl: 5},
		{name: "NOTIMP is cached like SERVFAIL", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeNotImplemented, nil, nil, nil) },
			cached: true, cacheType: Denial, ttl: 5},
		{name: "servfail 0 disables SERVFAIL caching", corefile: "cache {\nservfail 0\n}", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeServerFailure, nil, nil, nil) },
			cached: false, ttl: 0},
		{name: "REFUSED is never cached", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeRefused, nil, nil, nil) },
			cached: false},
		{name: "truncated answers are not cached", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				m := reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 300 IN A 192.0.2.1")}, nil, nil)
				m.Truncated = true
				return m
			}, cached: false, ttl: 300},
		{name: "zone transfers are not cached (their TTLs still become 5s, as CoreDNS)", corefile: "cache", qname: "example.org.", qtype: dns.TypeAXFR,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{soa("example.org.", 300)}, nil, nil)
			}, cached: false, ttl: 5},
		{name: "a delegation is cached as success for the minimal 5s (CoreDNS MinimalTTL)", corefile: "cache", qname: "sub.example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, nil, []dns.RR{rr("sub.example.org. 600 IN NS ns.sub.example.org.")}, []dns.RR{rr("ns.sub.example.org. 600 IN A 192.0.2.53")})
			}, cached: true, cacheType: Success, ttl: 5},
		{name: "an empty NOERROR (no SOA) is cached for 5s", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeSuccess, nil, nil, nil) },
			cached: true, cacheType: Success, ttl: 5},
		{name: "an answer to another question is not cached (drops)", corefile: "cache", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				m := reply(r, dns.RcodeSuccess, []dns.RR{rr("other.org. 300 IN A 192.0.2.1")}, nil, nil)
				m.Question[0].Name = "other.org."
				return m
			}, cached: false, ttl: 300},
		{name: "disable success ZONES", corefile: "cache {\ndisable success example.org\n}", qname: "www.example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{rr("www.example.org. 300 IN A 192.0.2.1")}, nil, nil)
			}, cached: false, ttl: 300},
		{name: "disable success leaves denials cached", corefile: "cache {\ndisable success example.org\n}", qname: "nx.example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeNameError, nil, []dns.RR{soa("example.org.", 60)}, nil)
			}, cached: true, cacheType: Denial, ttl: 60},
		{name: "disable denial ZONES", corefile: "cache {\ndisable denial example.org\n}", qname: "nx.example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeNameError, nil, []dns.RR{soa("example.org.", 60)}, nil)
			}, cached: false, ttl: 60},
		{name: "names outside the cache's ZONES pass through", corefile: "cache example.net", qname: "example.org.", qtype: dns.TypeA,
			answer: func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 300 IN A 192.0.2.1")}, nil, nil)
			}, cached: false, ttl: 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{answer: tc.answer}
			reg := prometheus.NewRegistry()
			c, clk := newCache(t, tc.corefile, reg, b)
			w := newWriter(false)
			m := ask(t, c, w, query(tc.qname, tc.qtype))
			if m == nil {
				t.Fatal("no answer")
			}
			for _, r := range append(append(m.Answer, m.Ns...), m.Extra...) {
				if r.Header().Rrtype != dns.TypeOPT && r.Header().Ttl != tc.ttl {
					t.Errorf("first answer TTL %d, want %d: %v", r.Header().Ttl, tc.ttl, r)
				}
			}
			clk.advance(2 * time.Second)
			w2 := newWriter(false)
			m2 := ask(t, c, w2, query(tc.qname, tc.qtype))
			cached := b.calls.Load() == 1
			if cached != tc.cached {
				t.Fatalf("cached %v, want %v (backend called %d times)", cached, tc.cached, b.calls.Load())
			}
			if !cached {
				return
			}
			if !w2.viaRaw {
				t.Error("a hit must be written as bytes (w.Write)")
			}
			if m2.Rcode != m.Rcode || len(m2.Answer) != len(m.Answer) || len(m2.Ns) != len(m.Ns) || len(m2.Extra) != len(m.Extra) {
				t.Fatalf("hit differs from the first answer:\n%v\n%v", m, m2)
			}
			for _, r := range append(append(m2.Answer, m2.Ns...), m2.Extra...) {
				if r.Header().Ttl != tc.ttl-2 {
					t.Errorf("hit TTL %d, want %d (decremented)", r.Header().Ttl, tc.ttl-2)
				}
			}
			if !m2.Authoritative {
				t.Error("CoreDNS sets AA on every cached answer")
			}
			if v := metricValue(t, reg, "coredns_cache_hits_total", map[string]string{"type": tc.cacheType}); v != 1 {
				t.Errorf("coredns_cache_hits_total{type=%s} = %v, want 1", tc.cacheType, v)
			}
			if v := metricValue(t, reg, "coredns_cache_entries", map[string]string{"type": tc.cacheType}); v != 1 {
				t.Errorf("coredns_cache_entries{type=%s} = %v, want 1", tc.cacheType, v)
			}
		})
	}
}

// The header and question of a hit come from the query: ID, RD, CD,
// opcode, and the question name in the client's case.
func TestHitHeaderAndQuestion(t *testing.T) {
	b := &backend{answer: func(r *dns.Msg) *dns.Msg {
		m := reply(r, dns.RcodeSuccess, []dns.RR{
			rr("www.example.org. 300 IN CNAME web.example.net."),
			rr("web.example.net. 300 IN A 192.0.2.1"),
		}, nil, nil)
		m.RecursionAvailable = true
		return m
	}}
	c, _ := newCache(t, "cache", nil, b)
	ask(t, c, newWriter(false), query("www.example.org.", dns.TypeA))

	tests := []struct {
		name  string
		qname string
		id    uint16
		rd    bool
		cd    bool
	}{
		{"same case", "www.example.org.", 1, true, false},
		{"client's case kept in the question", "WwW.ExAmPlE.oRg.", 2, true, false},
		{"RD cleared", "www.example.org.", 3, false, false},
		{"CD bit gets its own entry and is echoed", "www.example.org.", 4, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := query(tc.qname, dns.TypeA)
			q.Id, q.RecursionDesired, q.CheckingDisabled = tc.id, tc.rd, tc.cd
			w := newWriter(false)
			m := ask(t, c, w, q)
			if m.Id != tc.id || m.RecursionDesired != tc.rd || m.CheckingDisabled != tc.cd || !m.Response || !m.RecursionAvailable {
				t.Errorf("header %+v", m.MsgHdr)
			}
			if len(m.Question) != 1 || m.Question[0].Name != tc.qname {
				t.Errorf("question %v, want %s", m.Question, tc.qname)
			}
			if len(m.Answer) != 2 || m.Answer[1].(*dns.A).A.String() != "192.0.2.1" {
				t.Fatalf("answer %v", m.Answer)
			}
			// The owner of the CNAME is the query name: stored as a pointer
			// to the question, it takes the client's spelling (a documented
			// difference: CoreDNS keeps the first query's).
			if m.Answer[0].Header().Name != tc.qname {
				t.Errorf("CNAME owner %q, want the client's %q", m.Answer[0].Header().Name, tc.qname)
			}
		})
	}
	if n := b.calls.Load(); n != 2 {
		t.Errorf("backend called %d times, want 2 (one per CD bit)", n)
	}
}

// "TTLs decremented on hits (unless keepttl)" and entries expire.
func TestTTLDecrementKeepTTLAndExpiry(t *testing.T) {
	answer := func(r *dns.Msg) *dns.Msg {
		return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 100 IN A 192.0.2.1")}, nil, nil)
	}
	tests := []struct {
		corefile string
		after    time.Duration
		wantTTL  uint32
		hit      bool
	}{
		{"cache", 30 * time.Second, 70, true},
		{"cache", 99 * time.Second, 1, true},
		{"cache", 100 * time.Second, 100, false}, // expired: asked again, fresh TTL
		{"cache {\nkeepttl\n}", 30 * time.Second, 100, true},
		{"cache {\nkeepttl\n}", 101 * time.Second, 100, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s after %v", strings.ReplaceAll(tc.corefile, "\n", " "), tc.after), func(t *testing.T) {
			b := &backend{answer: answer}
			c, clk := newCache(t, tc.corefile, nil, b)
			ask(t, c, newWriter(false), query("example.org.", dns.TypeA))
			clk.advance(tc.after)
			m := ask(t, c, newWriter(false), query("example.org.", dns.TypeA))
			if hit := b.calls.Load() == 1; hit != tc.hit {
				t.Errorf("hit %v, want %v", hit, tc.hit)
			}
			if got := m.Answer[0].Header().Ttl; got != tc.wantTTL {
				t.Errorf("TTL %d, want %d", got, tc.wantTTL)
			}
		})
	}
}

// "DO" is part of the key; the AD bit is only kept for clients that ask
// for DNSSEC (DO) or set AD (RFC 6840 5.7-5.8).
func TestDNSSECBits(t *testing.T) {
	b := &backend{answer: func(r *dns.Msg) *dns.Msg {
		m := reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 300 IN A 192.0.2.1")}, nil, nil)
		m.AuthenticatedData = true
		return m
	}}
	c, _ := newCache(t, "cache", nil, b)
	tests := []struct {
		name   string
		do, ad bool
		wantAD bool
	}{
		{"DO: AD kept", true, false, true},
		{"AD in the query: AD kept", false, true, true},
		{"neither: AD cleared", false, false, false},
	}
	for _, pass := range []string{"miss", "hit"} {
		for _, tc := range tests {
			t.Run(pass+" "+tc.name, func(t *testing.T) {
				q := query("example.org.", dns.TypeA)
				q.AuthenticatedData = tc.ad
				if tc.do {
					q.SetEdns0(4096, true)
				}
				m := ask(t, c, newWriter(false), q)
				if m.AuthenticatedData != tc.wantAD {
					t.Errorf("AD %v, want %v", m.AuthenticatedData, tc.wantAD)
				}
			})
		}
	}
}

// A hit carries the client's EDNS0 (size, DO, version 0) and fits its
// buffer: records that do not fit are dropped and TC is set, as
// dns.Msg.Truncate does in CoreDNS's ScrubWriter.
func TestHitEDNS0AndTruncation(t *testing.T) {
	b := &backend{answer: func(r *dns.Msg) *dns.Msg {
		var ans []dns.RR
		for i := range 60 {
			ans = append(ans, rr(fmt.Sprintf("big.example.org. 300 IN TXT \"record number %02d of a large answer\"", i)))
		}
		return reply(r, dns.RcodeSuccess, ans, nil, nil)
	}}
	c, _ := newCache(t, "cache", nil, b)
	// fill the cache over TCP (no truncation), with and without DO (a
	// key of its own)
	ask(t, c, newWriter(true), query("big.example.org.", dns.TypeTXT))
	qdo := query("big.example.org.", dns.TypeTXT)
	qdo.SetEdns0(4096, true)
	ask(t, c, newWriter(true), qdo)

	tests := []struct {
		name    string
		tcp     bool
		edns    uint16 // 0: no OPT
		do      bool
		wantTC  bool
		maxSize int
	}{
		{"UDP without EDNS0: 512 bytes", false, 0, false, true, 512},
		{"UDP with EDNS0 1232", false, 1232, false, true, 1232},
		{"UDP with EDNS0 1232 and DO", false, 1232, true, true, 1232},
		{"UDP with EDNS0 4096: fits", false, 4096, false, false, 4096},
		{"TCP: everything", true, 0, false, false, 65535},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := query("big.example.org.", dns.TypeTXT)
			if tc.edns != 0 {
				q.SetEdns0(tc.edns, tc.do)
			}
			w := newWriter(tc.tcp)
			m := ask(t, c, w, q)
			if !w.viaRaw {
				t.Fatal("not a hit")
			}
			if len(w.raw) > tc.maxSize {
				t.Errorf("%d bytes for a %d byte buffer", len(w.raw), tc.maxSize)
			}
			if m.Truncated != tc.wantTC {
				t.Errorf("TC %v, want %v", m.Truncated, tc.wantTC)
			}
			if !tc.wantTC && len(m.Answer) != 60 {
				t.Errorf("%d records, want 60", len(m.Answer))
			}
			if tc.wantTC && (len(m.Answer) == 0 || len(m.Answer) >= 60) {
				t.Errorf("%d records in a truncated answer", len(m.Answer))
			}
			opt := m.IsEdns0()
			if (opt != nil) != (tc.edns != 0) {
				t.Fatalf("OPT %v, query had EDNS0 %v", opt, tc.edns != 0)
			}
			if opt != nil && (opt.UDPSize() != tc.edns || opt.Do() != tc.do || opt.Version() != 0) {
				t.Errorf("OPT size %d do %v version %d", opt.UDPSize(), opt.Do(), opt.Version())
			}
		})
	}
}

// "serve_stale [DURATION] [REFRESH_MODE]": expired entries are served with
// TTL 0 for DURATION; immediate refreshes in the background, verify asks
// first and serves stale only if the source fails.
func TestServeStale(t *testing.T) {
	good := func(r *dns.Msg) *dns.Msg {
		return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 60 IN A 192.0.2.1")}, nil, nil)
	}
	tests := []struct {
		name     string
		corefile string
		after    time.Duration
		later    func(r *dns.Msg) *dns.Msg // the backend after the entry expired
		wantTTL  uint32
		wantIP   string
		stale    bool
	}{
		{"immediate: stale answer with TTL 0", "cache {\nserve_stale\n}", 90 * time.Second, func(r *dns.Msg) *dns.Msg { return nil }, 0, "192.0.2.1", true},
		{"past DURATION: not served", "cache {\nserve_stale 1m\n}", 200 * time.Second, good, 60, "192.0.2.1", false},
		{"verify: a working source wins", "cache {\nserve_stale 1h verify\n}", 90 * time.Second,
			func(r *dns.Msg) *dns.Msg {
				return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 60 IN A 192.0.2.2")}, nil, nil)
			}, 60, "192.0.2.2", false},
		{"verify: a failing source (SERVFAIL) gets the stale entry", "cache {\nserve_stale 1h verify\n}", 90 * time.Second,
			func(r *dns.Msg) *dns.Msg { return reply(r, dns.RcodeServerFailure, nil, nil, nil) }, 0, "192.0.2.1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{answer: good}
			reg := prometheus.NewRegistry()
			c, clk := newCache(t, tc.corefile, reg, b)
			ask(t, c, newWriter(false), query("example.org.", dns.TypeA))
			clk.advance(tc.after)
			b.answer = tc.later
			m := ask(t, c, newWriter(false), query("example.org.", dns.TypeA))
			if m == nil || len(m.Answer) != 1 {
				t.Fatalf("answer %v", m)
			}
			if ttl := m.Answer[0].Header().Ttl; ttl != tc.wantTTL {
				t.Errorf("TTL %d, want %d", ttl, tc.wantTTL)
			}
			if ip := m.Answer[0].(*dns.A).A.String(); ip != tc.wantIP {
				t.Errorf("IP %s, want %s", ip, tc.wantIP)
			}
			want := 0.0
			if tc.stale {
				want = 1
			}
			if v := max(metricValue(t, reg, "coredns_cache_served_stale_total", nil), 0); v != want {
				t.Errorf("coredns_cache_served_stale_total %v, want %v", v, want)
			}
		})
	}
}

// "prefetch AMOUNT [[DURATION] [PERCENTAGE%]]": popular entries are
// refreshed when their TTL drops below PERCENTAGE.
func TestPrefetch(t *testing.T) {
	b := &backend{}
	ip := "192.0.2.1"
	b.answer = func(r *dns.Msg) *dns.Msg {
		return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 100 IN A " + ip)}, nil, nil)
	}
	reg := prometheus.NewRegistry()
	c, clk := newCache(t, "cache {\nprefetch 2 10m 20%\n}", reg, b)
	ask(t, c, newWriter(false), query("example.org.", dns.TypeA)) // stored, TTL 100
	clk.advance(10 * time.Second)
	ask(t, c, newWriter(false), query("example.org.", dns.TypeA)) // hit 1, TTL 90: no prefetch
	if b.calls.Load() != 1 {
		t.Fatalf("prefetched too early")
	}
	ip = "192.0.2.2"
	clk.advance(75 * time.Second)
	m := ask(t, c, newWriter(false), query("example.org.", dns.TypeA)) // hit 2, TTL 15 <= 20: prefetch
	if m.Answer[0].(*dns.A).A.String() != "192.0.2.1" || m.Answer[0].Header().Ttl != 15 {
		t.Errorf("the client gets the cached answer: %v", m.Answer[0])
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.calls.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if b.calls.Load() != 2 {
		t.Fatal("no prefetch")
	}
	// wait for the refreshed entry
	for time.Now().Before(deadline) {
		m = ask(t, c, newWriter(false), query("example.org.", dns.TypeA))
		if m.Answer[0].(*dns.A).A.String() == "192.0.2.2" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if m.Answer[0].(*dns.A).A.String() != "192.0.2.2" || m.Answer[0].Header().Ttl != 100 {
		t.Errorf("after prefetch: %v", m.Answer[0])
	}
	if v := metricValue(t, reg, "coredns_cache_prefetch_total", nil); v != 1 {
		t.Errorf("coredns_cache_prefetch_total %v", v)
	}
}

// "Eviction is random, not TTL based" per shard when it is full.
func TestEviction(t *testing.T) {
	b := &backend{answer: func(r *dns.Msg) *dns.Msg {
		return reply(r, dns.RcodeSuccess, []dns.RR{rr(r.Question[0].Name + " 300 IN A 192.0.2.1")}, nil, nil)
	}}
	reg := prometheus.NewRegistry()
	c, _ := newCache(t, "cache {\nsuccess 1024\n}", reg, b) // 256 shards of 4
	const n = 3000
	for i := range n {
		ask(t, c, newWriter(false), query(fmt.Sprintf("h%d.example.org.", i), dns.TypeA))
	}
	got := c.pcache.Len()
	if got > 1024 || got < 900 {
		t.Errorf("%d entries, want at most 1024 and most shards full", got)
	}
	ev := metricValue(t, reg, "coredns_cache_evictions_total", map[string]string{"type": Success})
	if int(ev) != n-got {
		t.Errorf("coredns_cache_evictions_total %v, want %d", ev, n-got)
	}
	if v := metricValue(t, reg, "coredns_cache_entries", map[string]string{"type": Success}); int(v) != got {
		t.Errorf("coredns_cache_entries %v, want %d", v, got)
	}
}

// Metric names and labels as CoreDNS 1.14.1: server is the query's
// server ("" outside a server), zones the cache's zones, view "".
func TestMetricsLabels(t *testing.T) {
	b := &backend{answer: func(r *dns.Msg) *dns.Msg {
		return reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 300 IN A 192.0.2.1")}, nil, nil)
	}}
	reg := prometheus.NewRegistry()
	ca, err := cacheParse(controller("cache example.org example.net", reg))
	if err != nil {
		t.Fatal(err)
	}
	ca.Next = b.handler()
	for range 3 {
		ca.ServeDNS(context.Background(), newWriter(false), query("example.org.", dns.TypeA))
	}
	ca.ServeDNS(context.Background(), newWriter(false), query("example.com.", dns.TypeA)) // not in zones
	labels := map[string]string{"server": "", "zones": "example.org.,example.net.", "view": ""}
	tests := []struct {
		metric string
		extra  map[string]string
		want   float64
	}{
		{"coredns_cache_requests_total", nil, 3},
		{"coredns_cache_misses_total", nil, 1},
		{"coredns_cache_hits_total", map[string]string{"type": "success"}, 2},
		{"coredns_cache_entries", map[string]string{"type": "success"}, 1},
		{"coredns_cache_entries", map[string]string{"type": "denial"}, 0},
	}
	for _, tc := range tests {
		l := map[string]string{}
		for k, v := range labels {
			l[k] = v
		}
		for k, v := range tc.extra {
			l[k] = v
		}
		if v := metricValue(t, reg, tc.metric, l); v != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.metric, tc.extra, v, tc.want)
		}
	}
}

// A plugin after the cache that writes packed bytes is cached too.
func TestCachesRawWrites(t *testing.T) {
	calls := 0
	c, _ := newCache(t, "cache", nil, &backend{})
	c.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		calls++
		m := reply(r, dns.RcodeSuccess, []dns.RR{rr("example.org. 300 IN A 192.0.2.1")}, nil, nil)
		b, _ := m.Pack()
		w.Write(b)
		return 0, nil
	})
	for range 2 {
		m := ask(t, c, newWriter(false), query("example.org.", dns.TypeA))
		if len(m.Answer) != 1 {
			t.Fatalf("answer %v", m)
		}
	}
	if calls != 1 {
		t.Errorf("backend called %d times", calls)
	}
}

// putName writes the client's spelling over the stored name.
func TestPutName(t *testing.T) {
	tests := []struct {
		stored, client string
		ok             bool
	}{
		{"example.org.", "EXAMPLE.org.", true},
		{".", ".", true},
		{"a\\.b.example.", "A\\.B.example.", true},
		{"example.org.", "example.org", false},
		{"example.org.", "exampl.eorg.", false},
	}
	for _, tc := range tests {
		buf := make([]byte, 256)
		n, err := dns.PackDomainName(tc.stored, buf, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		ok := putName(buf, 0, n, tc.client)
		if ok != tc.ok {
			t.Errorf("putName(%q over %q) = %v", tc.client, tc.stored, ok)
			continue
		}
		if ok {
			got, _, err := dns.UnpackDomainName(buf, 0)
			if err != nil || got != tc.client {
				t.Errorf("wrote %q (%v), want %q", got, err, tc.client)
			}
		}
	}
}

var _ = net.IPv4
