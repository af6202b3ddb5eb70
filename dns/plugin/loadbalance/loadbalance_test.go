package loadbalance

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func controller(input string) *dnsserver.Controller {
	return &dnsserver.Controller{
		Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(input)),
		Directive: "loadbalance",
		Config:    &dnsserver.Config{Zone: ".", Zones: []string{"."}, Port: "53", Transport: "dns"},
		Env:       &dnsserver.Env{Logger: slog.New(slog.DiscardHandler)},
	}
}

func rr(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

// writer records what it got, raw or as a message.
type writer struct {
	msg *dns.Msg
	raw []byte
}

func (w *writer) LocalAddr() net.Addr       { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *writer) RemoteAddr() net.Addr      { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212} }
func (w *writer) WriteMsg(m *dns.Msg) error { w.msg, w.raw = m, nil; return nil }
func (w *writer) Write(b []byte) (int, error) {
	w.raw = append([]byte(nil), b...)
	w.msg = new(dns.Msg)
	if err := w.msg.Unpack(b); err != nil {
		return 0, err
	}
	return len(b), nil
}
func (w *writer) Close() error        { return nil }
func (w *writer) TsigStatus() error   { return nil }
func (w *writer) TsigTimersOnly(bool) {}
func (w *writer) Hijack()             {}

func TestSetup(t *testing.T) {
	tests := []struct {
		input      string
		wantErr    string
		policy     string // "round_robin" or "weighted"
		weightFile string
		reload     time.Duration
		prefer     int
	}{
		{input: "loadbalance", policy: "round_robin"},
		{input: "loadbalance round_robin", policy: "round_robin"},
		{input: "loadbalance weighted wfile", policy: "weighted", weightFile: "wfile", reload: 30 * time.Second},
		{input: "loadbalance weighted wf {\nreload 10s\n}", policy: "weighted", weightFile: "wf", reload: 10 * time.Second},
		{input: "loadbalance weighted wf {\nreload 0s\n}", policy: "weighted", weightFile: "wf", reload: 0},
		{input: "loadbalance round_robin {\nprefer 10.9.20.0/24 192.168.1.0/24\n}", policy: "round_robin", prefer: 2},
		{input: "loadbalance {\nprefer fd00::/8\n}", policy: "round_robin", prefer: 1},

		{input: "loadbalance fleeb", wantErr: "unknown policy"},
		{input: "loadbalance round_robin a", wantErr: "unknown property"},
		{input: "loadbalance weighted", wantErr: "missing weight file argument"},
		{input: "loadbalance weighted a b", wantErr: "unexpected argument"},
		{input: "loadbalance weighted wfile {\nsusu\n}", wantErr: "unknown property"},
		{input: "loadbalance weighted wfile {\nreload a\n}", wantErr: "invalid reload duration"},
		{input: "loadbalance weighted wfile {\nreload 30s a\n}", wantErr: "unexpected argument"},
		{input: "loadbalance {\nprefer 10.0.0.0/33\n}", wantErr: "invalid CIDR"},
		{input: "loadbalance {\nfoo\n}", wantErr: "unknown property 'foo'"},
	}
	for _, tc := range tests {
		t.Run(tc.input, func(t *testing.T) {
			lb, err := parse(controller(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "Corefile:") {
					t.Errorf("error %q names no file and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			policy := "round_robin"
			if lb.weighted != nil {
				policy = "weighted"
				if lb.weighted.fileName != tc.weightFile || lb.weighted.reload != tc.reload {
					t.Errorf("weighted %s %v", lb.weighted.fileName, lb.weighted.reload)
				}
			}
			if policy != tc.policy {
				t.Errorf("policy %s, want %s", policy, tc.policy)
			}
			if len(lb.preferSubnets) != tc.prefer {
				t.Errorf("%d prefer subnets, want %d", len(lb.preferSubnets), tc.prefer)
			}
		})
	}
}

func answerWith(qname string, qtype uint16, rcode int, answer, extra []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.Response = true
	m.Rcode = rcode
	m.Answer = answer
	m.Extra = extra
	return m
}

// sig is the order of the records of a section, as text.
func sig(rrs []dns.RR) string {
	var s []string
	for _, r := range rrs {
		s = append(s, strings.Join(strings.Fields(r.String())[3:], " "))
	}
	return strings.Join(s, " | ")
}

// serveThrough runs lb with a next plugin that writes m (packed when raw).
func serveThrough(t *testing.T, lb *LoadBalance, m *dns.Msg, raw bool) *writer {
	t.Helper()
	lb.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		c := m.Copy()
		if raw {
			c.Compress = true
			b, err := c.Pack()
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b)
		} else {
			w.WriteMsg(c)
		}
		return 0, nil
	})
	w := &writer{}
	q := new(dns.Msg)
	q.SetQuestion(m.Question[0].Name, m.Question[0].Qtype)
	lb.ServeDNS(context.Background(), w, q)
	return w
}

// "randomizes the order of A, AAAA, and MX records"; "It will take care
// to sort any CNAMEs before any address records". Both for answers
// written as messages and as packed bytes (cache hits).
func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name      string
		msg       *dns.Msg
		shuffled  bool   // more than one order appears
		wantFirst string // the first record is always this (CNAME first)
		orders    int    // number of distinct answer orders expected
	}{
		{"three A records: all 6 orders", answerWith("a.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{
			rr("a.example. 60 IN A 10.0.0.1"), rr("a.example. 60 IN A 10.0.0.2"), rr("a.example. 60 IN A 10.0.0.3")}, nil), true, "", 6},
		{"CNAME first, then the shuffled addresses", answerWith("www.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{
			rr("web.example. 60 IN A 10.0.0.1"), rr("www.example. 60 IN CNAME web.example."), rr("web.example. 60 IN A 10.0.0.2")}, nil), true, "www.example. 60 IN CNAME web.example.", 2},
		{"AAAA records", answerWith("a.example.", dns.TypeAAAA, dns.RcodeSuccess, []dns.RR{
			rr("a.example. 60 IN AAAA fd00::1"), rr("a.example. 60 IN AAAA fd00::2")}, nil), true, "", 2},
		{"MX records", answerWith("example.", dns.TypeMX, dns.RcodeSuccess, []dns.RR{
			rr("example. 60 IN MX 10 mx1.example."), rr("example. 60 IN MX 20 mx2.example."), rr("example. 60 IN MX 30 mx3.example.")}, []dns.RR{
			rr("mx1.example. 60 IN A 10.0.0.1"), rr("mx2.example. 60 IN A 10.0.0.2")}), true, "", 6},
		{"a single A record", answerWith("a.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{rr("a.example. 60 IN A 10.0.0.1")}, nil), false, "", 1},
		{"TXT records are not shuffled", answerWith("a.example.", dns.TypeTXT, dns.RcodeSuccess, []dns.RR{
			rr("a.example. 60 IN TXT \"1\""), rr("a.example. 60 IN TXT \"2\""), rr("a.example. 60 IN TXT \"3\"")}, nil), false, "", 1},
		{"NXDOMAIN is not touched", answerWith("a.example.", dns.TypeA, dns.RcodeNameError, []dns.RR{
			rr("a.example. 60 IN A 10.0.0.1"), rr("a.example. 60 IN A 10.0.0.2")}, nil), false, "", 1},
		{"zone transfers are not touched", answerWith("example.", dns.TypeAXFR, dns.RcodeSuccess, []dns.RR{
			rr("example. 60 IN SOA ns.example. h.example. 1 2 3 4 5"), rr("a.example. 60 IN A 10.0.0.1"), rr("a.example. 60 IN A 10.0.0.2"), rr("example. 60 IN SOA ns.example. h.example. 1 2 3 4 5")}, nil), false, "", 1},
	}
	for _, raw := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("raw=%v/%s", raw, tc.name), func(t *testing.T) {
				lb := (&lbConfig{shuffle: randomShuffle, roundRobin: true}).handler()
				orders := map[string]bool{}
				want := sortedSet(tc.msg.Answer)
				for range 300 {
					w := serveThrough(t, lb, tc.msg, raw)
					if raw && w.raw == nil && tc.msg.Question[0].Qtype == dns.TypeA && tc.orders == 6 {
						t.Fatal("raw answer not shuffled as bytes")
					}
					got := w.msg
					if !reflect.DeepEqual(sortedSet(got.Answer), want) || len(got.Extra) != len(tc.msg.Extra) {
						t.Fatalf("records changed:\n%v\nwant\n%v", got, tc.msg)
					}
					if tc.wantFirst != "" && got.Answer[0].String() != rr(tc.wantFirst).String() {
						t.Fatalf("first record %v, want %v", got.Answer[0], tc.wantFirst)
					}
					orders[sig(got.Answer)] = true
				}
				if len(orders) != tc.orders {
					t.Errorf("%d distinct orders, want %d: %v", len(orders), tc.orders, orders)
				}
			})
		}
	}
}

func sortedSet(rrs []dns.RR) []string {
	var s []string
	for _, r := range rrs {
		s = append(s, r.String())
	}
	sort.Strings(s)
	return s
}

// Packed answers whose compression pointers point into the records that
// move cannot be reordered as bytes: they are unpacked instead, and the
// result is still a valid, complete answer. And an OPT record stays last.
func TestWireShuffleSafety(t *testing.T) {
	// MX targets in the answer are pointed to by the glue in the extra
	// section: moving the MX records moves the pointer targets.
	mx := answerWith("example.", dns.TypeMX, dns.RcodeSuccess, []dns.RR{
		rr("example. 60 IN MX 10 mx1.example."), rr("example. 60 IN MX 20 mx2.example.")}, []dns.RR{
		rr("mx1.example. 60 IN A 10.0.0.1"), rr("mx2.example. 60 IN A 10.0.0.2")})
	mx.Compress = true
	b, err := mx.Pack()
	if err != nil {
		t.Fatal(err)
	}
	seenFallback := false
	for range 50 {
		out, res := shuffleWire(b, nil)
		switch res {
		case wireFallback:
			seenFallback = true
		case wireShuffled:
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("shuffled bytes do not unpack: %v", err)
			}
			if !reflect.DeepEqual(sortedSet(m.Answer), sortedSet(mx.Answer)) {
				t.Fatalf("records changed: %v", m)
			}
		}
	}
	if !seenFallback {
		t.Error("the MX reorder never fell back although the glue points into it")
	}

	// A records answering a CNAME point into the CNAME's target: safe.
	a := answerWith("www.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{
		rr("www.example. 60 IN CNAME web.example."), rr("web.example. 60 IN A 10.0.0.1"), rr("web.example. 60 IN A 10.0.0.2")}, nil)
	a.SetEdns0(1232, true)
	a.Compress = true
	b, _ = a.Pack()
	shuffled := false
	for range 50 {
		out, res := shuffleWire(b, nil)
		if res == wireFallback {
			t.Fatal("fell back for a safe message")
		}
		if res == wireShuffled {
			shuffled = true
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatal(err)
			}
			if m.Answer[0].Header().Rrtype != dns.TypeCNAME || m.IsEdns0() == nil || m.Extra[len(m.Extra)-1].Header().Rrtype != dns.TypeOPT {
				t.Fatalf("bad order: %v", m)
			}
		}
	}
	if !shuffled {
		t.Error("never shuffled")
	}
}

// Random messages through the byte shuffle: never a panic, and what comes
// out unpacks to the same records.
func TestWireShuffleArbitrary(t *testing.T) {
	types := []string{"A 10.0.0.%d", "AAAA fd00::%d", "CNAME c%d.example.", "MX %d mx.example.", "TXT \"t%d\"", "NS ns%d.example.", "SRV 1 1 %d srv.example."}
	for i := range 500 {
		m := new(dns.Msg)
		m.SetQuestion("q.example.", dns.TypeA)
		m.Response = true
		m.Compress = i%2 == 0
		n := 1 + i%7
		for j := range n {
			owner := []string{"q.example.", "c1.example.", "Q.EXAMPLE.", "mx.example."}[(i+j)%4]
			m.Answer = append(m.Answer, rr(owner+" 60 IN "+fmt.Sprintf(types[(i*3+j)%len(types)], j+1)))
		}
		if i%3 == 0 {
			m.Extra = append(m.Extra, rr("mx.example. 60 IN A 10.1.1.1"), rr("mx.example. 60 IN A 10.1.1.2"))
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		// truncated and corrupted inputs must not panic
		for cut := 0; cut < len(b); cut += 7 {
			shuffleWire(b[:cut], nil)
		}
		out, res := shuffleWire(b, nil)
		if res != wireShuffled {
			continue
		}
		got := new(dns.Msg)
		if err := got.Unpack(out); err != nil {
			t.Fatalf("message %d: %v\n%v", i, err, m)
		}
		if !reflect.DeepEqual(sortedSet(got.Answer), sortedSet(m.Answer)) || !reflect.DeepEqual(sortedSet(got.Extra), sortedSet(m.Extra)) {
			t.Fatalf("message %d: records changed\n%v\n%v", i, m, got)
		}
	}
}

// "prefer CIDR [CIDR...]" reorders A/AAAA records so that IPs from
// preferred subnets appear first, in the order the subnets are given.
func TestPrefer(t *testing.T) {
	lbc, err := parse(controller("loadbalance round_robin {\nprefer 10.9.20.0/24 192.168.1.0/24\n}"))
	if err != nil {
		t.Fatal(err)
	}
	lb := lbc.handler()
	m := answerWith("a.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{
		rr("a.example. 60 IN A 172.16.0.1"), rr("a.example. 60 IN A 192.168.1.5"), rr("a.example. 60 IN A 10.9.20.7"), rr("a.example. 60 IN A 172.16.0.2")}, nil)
	for _, raw := range []bool{false, true} {
		for range 50 {
			w := serveThrough(t, lb, m, raw)
			got := w.msg.Answer
			if got[0].(*dns.A).A.String() != "10.9.20.7" || got[1].(*dns.A).A.String() != "192.168.1.5" {
				t.Fatalf("raw=%v order %s", raw, sig(got))
			}
		}
	}
}

const twoDomains = `
# domain 1
w1.example.org
192.168.1.15   10
192.168.1.14   20

# domain 2
w2.example.org
 # domain 3
 w3.example.org
 192.168.2.16 11
 192.168.2.15 12
 192.168.2.14 13
`

// The weight file: domain lines, "IP WEIGHT" lines, weights in [1,255].
func TestWeightFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    map[string]weights
		wantErr string
	}{
		{"two domains", twoDomains, map[string]weights{
			"w1.example.org.": {{net.ParseIP("192.168.1.15"), 10}, {net.ParseIP("192.168.1.14"), 20}},
			"w2.example.org.": {},
			"w3.example.org.": {{net.ParseIP("192.168.2.16"), 11}, {net.ParseIP("192.168.2.15"), 12}, {net.ParseIP("192.168.2.14"), 13}},
		}, ""},
		{"missing weight", "w1.example.org\n192.168.1.14\n", nil, "wrong domain name"},
		{"missing domain", "192.168.1.14 10\n", nil, "missing domain name"},
		{"wrong IP", "w1.example.org\n192.168.1.300 10\n", nil, "wrong IP address"},
		{"weight above 255", "w1.example.org\n192.168.1.14 300\n", nil, "wrong weight value"},
		{"weight 0", "w1.example.org\n192.168.1.14 0\n", nil, "wrong weight value"},
		{"three fields", "w1.example.org\n192.168.1.14 1 2\n", nil, "could not parse weight line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWeightedRR("weights", 0, slog.New(slog.DiscardHandler))
			got, err := w.parseWeights(bufio.NewScanner(strings.NewReader(tc.content)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "weights:") {
					t.Fatalf("error %v, want %q naming the file and line", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

// "weighted policy assigns weight values to IPs to control the relative
// likelihood of particular IPs to be returned as the first (top) A/AAAA
// record"; addresses without a weight have weight 1. The random draw is
// fixed here so that the choice is exact.
func TestWeightedTopRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weights")
	if err := os.WriteFile(path, []byte("w.example.\n10.0.0.1 3\n10.0.0.2 1\n10.0.0.3 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lbc, err := parse(controller("loadbalance weighted " + path + " {\nreload 0s\n}"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lbc.weighted.onStartup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lbc.weighted.onShutdown() })
	m := answerWith("w.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{
		rr("w.example. 60 IN A 10.0.0.1"), rr("w.example. 60 IN A 10.0.0.2"), rr("w.example. 60 IN A 10.0.0.3"), rr("w.example. 60 IN A 10.0.0.4")}, nil)
	// Sorted by weight: .1 (3), .3 (2), .2 (1), .4 (1, default): sum 7.
	tests := []struct {
		draw uint
		top  string
	}{
		{0, "10.0.0.1"}, {2, "10.0.0.1"}, {3, "10.0.0.3"}, {4, "10.0.0.3"}, {5, "10.0.0.2"}, {6, "10.0.0.4"},
	}
	lb := lbc.handler()
	for _, tc := range tests {
		for _, raw := range []bool{false, true} {
			lbc.weighted.randUint = func(limit uint) uint {
				if limit != 7 {
					t.Fatalf("weight sum %d, want 7", limit)
				}
				return tc.draw
			}
			w := serveThrough(t, lb, m, raw)
			if top := w.msg.Answer[0].(*dns.A).A.String(); top != tc.top {
				t.Errorf("draw %d raw=%v: top %s, want %s", tc.draw, raw, top, tc.top)
			}
		}
	}
}

// "DURATION interval to reload WEIGHTFILE ... if there are changes in the
// file".
func TestWeightFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weights")
	if err := os.WriteFile(path, []byte("w.example.\n10.0.0.1 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := newWeightedRR(path, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	if err := w.onStartup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.onShutdown() })
	if err := os.WriteFile(path, []byte("w.example.\n10.0.0.1 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		w.mutex.Lock()
		v := w.domains["w.example."][0].value
		w.mutex.Unlock()
		if v == 9 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("weight file not reloaded")
}

// A missing weight file fails the start when it will never be re-read.
func TestWeightFileMissing(t *testing.T) {
	w := newWeightedRR(filepath.Join(t.TempDir(), "nope"), 0, slog.New(slog.DiscardHandler))
	if err := w.onStartup(); err == nil {
		t.Error("no error for a missing weight file with reload 0")
	}
	w2 := newWeightedRR(filepath.Join(t.TempDir(), "nope"), time.Hour, slog.New(slog.DiscardHandler))
	if err := w2.onStartup(); err != nil {
		t.Errorf("a missing file that will be re-read only warns: %v", err)
	}
	w2.onShutdown()
}

// Stopping before starting (another plugin failed its start) returns.
func TestWeightedShutdownWithoutStartup(t *testing.T) {
	w := newWeightedRR("weights", time.Second, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { w.onShutdown(); w.onShutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("onShutdown blocked")
	}
}

// FuzzSetup: any loadbalance line parses or fails with an error, never a
// panic.
func FuzzSetup(f *testing.F) {
	for _, s := range []string{"loadbalance", "loadbalance round_robin {\nprefer 10.0.0.0/8 fd00::/8\n}", "loadbalance weighted f {\nreload 1s\n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		parse(controller(input))
	})
}
