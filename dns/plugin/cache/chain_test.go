package cache

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/forward"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/loadbalance"
)

// listenPair listens on UDP and TCP of one free port of ip.
func listenPair(t *testing.T, ip string) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)))
		if err != nil {
			pc.Close()
			continue
		}
		return pc, l
	}
	t.Fatal("no free port")
	return nil, nil
}

// serveDNS runs h on UDP and TCP of a free loopback port until the test
// ends and returns the address.
func serveDNS(t *testing.T, h dns.Handler) string {
	t.Helper()
	pc, l := listenPair(t, "127.0.0.1")
	var wg sync.WaitGroup
	wg.Add(2)
	u := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: wg.Done}
	s := &dns.Server{Listener: l, Handler: h, NotifyStartedFunc: wg.Done}
	go u.ActivateAndServe()
	go s.ActivateAndServe()
	wg.Wait()
	t.Cleanup(func() { u.Shutdown(); s.Shutdown() })
	return pc.LocalAddr().String()
}

// upstreamAnswers is the test's upstream resolver: 4 A records for
// svc.example., 60 TXT records for big.example., NXDOMAIN for the rest;
// it counts queries per name.
type upstreamAnswers struct {
	mu     sync.Mutex
	counts map[string]int
}

func (u *upstreamAnswers) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	u.mu.Lock()
	u.counts[strings.ToLower(q.Name)]++
	u.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	switch strings.ToLower(q.Name) {
	case "svc.example.":
		for i := 1; i <= 4; i++ {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(10, 0, 0, byte(i))})
		}
	case "big.example.":
		for i := range 60 {
			m.Answer = append(m.Answer, rr(fmt.Sprintf("%s 300 IN TXT \"record number %02d of a large answer\"", q.Name, i)))
		}
	case ".":
	default:
		if strings.HasPrefix(q.Name, "fwd") && q.Qtype == dns.TypeA { // forward benchmark names
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(10, 0, 0, 1)}}
			break
		}
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{upstreamSOA}
	}
	if o := r.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), o.Do())
	}
	m.Truncate(sizeOf(w, r))
	w.WriteMsg(m)
}

var upstreamSOA = soa("example.", 45)

func (u *upstreamAnswers) count(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.counts[name]
}

func sizeOf(w dns.ResponseWriter, r *dns.Msg) int {
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		return dns.MaxMsgSize
	}
	if o := r.IsEdns0(); o != nil {
		return max(int(o.UDPSize()), 512)
	}
	return 512
}

// server is a running dnsserver instance: UDP and TCP addresses.
type server struct{ udp, tcp string }

func (s server) addr(network string) string {
	if network == "tcp" {
		return s.tcp
	}
	return s.udp
}

// startServer runs the real server core (dnsserver) with body as the
// plugins of a ".:0" block bound to 127.0.0.1.
func startServer(t *testing.T, body string, reg prometheus.Registerer) server {
	t.Helper()
	corefile := ".:0 {\n  bind 127.0.0.1\n" + body + "\n}\n"
	inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{Port: "0",
		Env: &dnsserver.Env{Registerer: reg, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatalf("%s: %v", corefile, err)
	}
	if err := inst.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop() })
	s := inst.Servers()[0]
	return server{udp: s.UDPAddr().String(), tcp: s.TCPAddr().String()}
}

func exchange(t *testing.T, net_ string, s server, name string, qtype uint16, edns uint16) *dns.Msg {
	t.Helper()
	addr := s.addr(net_)
	c := &dns.Client{Net: net_, Timeout: 3 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns != 0 {
		m.SetEdns0(edns, false)
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", net_, name, dns.TypeToString[qtype], err)
	}
	return r
}

// The three plugins over real sockets: a client, a server running
// loadbalance -> cache -> forward, and an upstream on 127.0.0.1.
func TestChainOverSockets(t *testing.T) {
	up := &upstreamAnswers{counts: map[string]int{}}
	upAddr := serveDNS(t, up)
	reg := prometheus.NewRegistry()
	addr := startServer(t, "  loadbalance\n  cache\n  forward . "+upAddr, reg)

	t.Run("answers are cached: the upstream is asked once", func(t *testing.T) {
		orders := map[string]bool{}
		for i := range 40 {
			name := "svc.example."
			if i%2 == 1 {
				name = "SVC.Example."
			}
			m := exchange(t, "udp", addr, name, dns.TypeA, 0)
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 4 || m.Question[0].Name != name {
				t.Fatalf("answer %v", m)
			}
			var ips []string
			for _, a := range m.Answer {
				ips = append(ips, a.(*dns.A).A.String())
			}
			orders[strings.Join(ips, ",")] = true
		}
		if n := up.count("svc.example."); n != 1 {
			t.Errorf("upstream asked %d times", n)
		}
		// loadbalance shuffles the cached answers: 40 draws of 24 orders
		if len(orders) < 4 {
			t.Errorf("only %d orders in 40 answers", len(orders))
		}
		if v := metricValue(t, reg, "coredns_cache_hits_total", map[string]string{"type": "success"}); v != 39 {
			t.Errorf("coredns_cache_hits_total %v, want 39", v)
		}
	})

	t.Run("NXDOMAIN is cached with the SOA and its TTL", func(t *testing.T) {
		for range 3 {
			m := exchange(t, "udp", addr, "nope.example.", dns.TypeA, 1232)
			if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 || m.Ns[0].Header().Ttl > 45 || m.IsEdns0() == nil {
				t.Fatalf("answer %v", m)
			}
		}
		if n := up.count("nope.example."); n != 1 {
			t.Errorf("upstream asked %d times", n)
		}
	})

	t.Run("a large answer is truncated over UDP and complete over TCP", func(t *testing.T) {
		m := exchange(t, "udp", addr, "big.example.", dns.TypeTXT, 0)
		if !m.Truncated {
			t.Fatalf("UDP 512: TC not set: %d records", len(m.Answer))
		}
		m = exchange(t, "tcp", addr, "big.example.", dns.TypeTXT, 0)
		if m.Truncated || len(m.Answer) != 60 {
			t.Fatalf("TCP: TC %v %d records", m.Truncated, len(m.Answer))
		}
		// now cached: UDP with a large buffer gets it all from the cache
		m = exchange(t, "udp", addr, "big.example.", dns.TypeTXT, 4096)
		if m.Truncated || len(m.Answer) != 60 {
			t.Fatalf("UDP 4096 from the cache: TC %v %d records", m.Truncated, len(m.Answer))
		}
		m = exchange(t, "udp", addr, "big.example.", dns.TypeTXT, 0)
		if !m.Truncated || len(m.Answer) == 0 {
			t.Fatalf("UDP 512 from the cache: TC %v %d records", m.Truncated, len(m.Answer))
		}
	})
}

// coreDNSBinary is $SWITCHBOARD_COREDNS or <module root>/.bin/coredns.
func coreDNSBinary(t *testing.T) string {
	if p := os.Getenv("SWITCHBOARD_COREDNS"); p != "" {
		return p
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".bin", "coredns")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Skip("no CoreDNS binary: ./test.sh installs it into .bin/coredns (or set SWITCHBOARD_COREDNS)")
	return ""
}

// startCoreDNS runs the real CoreDNS 1.14.1 with body as the plugins of
// a block on 127.0.0.1 and returns its address.
func startCoreDNS(t *testing.T, body string) server {
	bin := coreDNSBinary(t)
	pc, l := listenPair(t, "127.0.0.1")
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	l.Close()
	dir := t.TempDir()
	corefile := fmt.Sprintf(".:%d {\n  bind 127.0.0.1\n%s\n}\n", port, body)
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", path)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	for time.Now().Before(deadline) {
		m := new(dns.Msg)
		m.SetQuestion("ready.invalid.", dns.TypeA)
		if _, _, err := c.Exchange(m, addr); err == nil {
			return server{udp: addr, tcp: addr}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("CoreDNS did not start: %s", out.String())
	return server{}
}

// Differential: the same Corefile lines in CoreDNS 1.14.1 and here give
// the same answers (records as sets, since loadbalance shuffles; TTLs
// within the seconds the test takes).
func TestSameAnswersAsCoreDNS(t *testing.T) {
	upOurs := &upstreamAnswers{counts: map[string]int{}}
	upTheirs := &upstreamAnswers{counts: map[string]int{}}
	oursUp := serveDNS(t, upOurs)
	theirsUp := serveDNS(t, upTheirs)
	body := "  loadbalance\n  cache 100 {\n    denial 5000 30\n  }\n  forward . "
	theirs := startCoreDNS(t, body+theirsUp)
	ours := startServer(t, body+oursUp, nil)

	type q struct {
		net   string
		name  string
		qtype uint16
		edns  uint16
	}
	queries := []q{
		{"udp", "svc.example.", dns.TypeA, 0},
		{"udp", "svc.example.", dns.TypeA, 0}, // hit
		{"udp", "Svc.EXAMPLE.", dns.TypeA, 1232},
		{"tcp", "svc.example.", dns.TypeA, 0},
		{"udp", "nope.example.", dns.TypeA, 0},
		{"udp", "nope.example.", dns.TypeA, 0}, // hit
		{"udp", "nope.example.", dns.TypeAAAA, 1232},
		{"udp", "big.example.", dns.TypeTXT, 0},
		{"tcp", "big.example.", dns.TypeTXT, 0},
		{"udp", "big.example.", dns.TypeTXT, 0},
		{"udp", "big.example.", dns.TypeTXT, 4096},
	}
	for i, qq := range queries {
		t.Run(fmt.Sprintf("%d %s %s %s edns=%d", i, qq.net, qq.name, dns.TypeToString[qq.qtype], qq.edns), func(t *testing.T) {
			a := exchange(t, qq.net, ours, qq.name, qq.qtype, qq.edns)
			b := exchange(t, qq.net, theirs, qq.name, qq.qtype, qq.edns)
			if a.Rcode != b.Rcode || a.Truncated != b.Truncated || a.Authoritative != b.Authoritative || a.RecursionAvailable != b.RecursionAvailable {
				t.Errorf("header differs:\nours   %+v\ntheirs %+v", a.MsgHdr, b.MsgHdr)
			}
			if a.Question[0] != b.Question[0] {
				t.Errorf("question %v vs %v", a.Question[0], b.Question[0])
			}
			if (a.IsEdns0() == nil) != (b.IsEdns0() == nil) {
				t.Errorf("OPT: ours %v theirs %v", a.IsEdns0(), b.IsEdns0())
			}
			if !b.Truncated {
				if x, y := rrSet(a.Answer), rrSet(b.Answer); x != y {
					t.Errorf("answer:\nours   %s\ntheirs %s", x, y)
				}
				if x, y := rrSet(a.Ns), rrSet(b.Ns); x != y {
					t.Errorf("authority:\nours   %s\ntheirs %s", x, y)
				}
			} else if len(a.Answer) == 0 || len(b.Answer) == 0 {
				t.Errorf("truncated answers: ours %d records, theirs %d", len(a.Answer), len(b.Answer))
			}
			if ta, tb := highestTTL(a), highestTTL(b); ta-tb > 2 || tb-ta > 2 {
				t.Errorf("TTL ours %d theirs %d", ta, tb)
			}
		})
	}
	if a, b := upOurs.count("svc.example."), upTheirs.count("svc.example."); a != b {
		t.Errorf("upstream queries for svc.example.: ours %d, CoreDNS %d", a, b)
	}
}

// rrSet is the records without TTLs, sorted.
func rrSet(rrs []dns.RR) string {
	var s []string
	for _, r := range rrs {
		c := dns.Copy(r)
		c.Header().Ttl = 0
		c.Header().Name = strings.ToLower(c.Header().Name)
		s = append(s, c.String())
	}
	sort.Strings(s)
	return strings.Join(s, "\n")
}

func highestTTL(m *dns.Msg) int {
	t := 0
	for _, r := range append(m.Answer, m.Ns...) {
		t = max(t, int(r.Header().Ttl))
	}
	return t
}
