package dnsserver_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
)

// bareServer is the peer: a plain miekg/dns server on 127.0.0.1 whose
// handler does what testanswer does (one A record, question as asked).
func bareServer(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		m.Answer = []dns.RR{&dns.A{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
			A:   net.IPv4(192, 0, 2, 1),
		}}
		w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	tb.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

const benchCorefile = "example.org {\n bind 127.0.0.1\n testanswer\n}\n"

func benchRoundTrip(b *testing.B, addr string) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	q, _ := query("www.example.org.", dns.TypeA).Pack()
	buf := make([]byte, 1500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q[0], q[1] = byte(i>>8), byte(i)
		if _, err := c.Write(q); err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		if n < 12 || buf[0] != q[0] || buf[1] != q[1] {
			b.Fatalf("answer %d bytes, id %x%x", n, buf[0], buf[1])
		}
	}
}

// BenchmarkServeUDP is one client's UDP round trips through a real
// socket with a trivial chain, against a bare miekg/dns server in the
// same run (allocations count the client too, the same for both).
func BenchmarkServeUDP(b *testing.B) {
	b.Run("switchboard", func(b *testing.B) {
		inst := startInstance(b, benchCorefile, nil)
		benchRoundTrip(b, inst.Servers()[0].UDPAddr().String())
	})
	b.Run("miekg", func(b *testing.B) {
		benchRoundTrip(b, bareServer(b))
	})
}

// BenchmarkServePacket is the server's own work for one query, without
// sockets: unpack, route, chain, scrub, pack.
func BenchmarkServePacket(b *testing.B) {
	inst, err := dnsserver.NewInstance("Corefile", []byte(benchCorefile), dnsserver.Options{Port: "0", Env: quietEnv()})
	if err != nil {
		b.Fatal(err)
	}
	srv := inst.Servers()[0]
	q, _ := query("www.example.org.", dns.TypeA).Pack()
	w := &captureWriter{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.wrote = w.wrote[:0]
		srv.ServePacket(w, q)
	}
}

// BenchmarkDnsperf runs dnsperf (the real load tool) against the server
// with a fixed-answer chain, a bare miekg/dns server doing the same work,
// and CoreDNS when its binary is there ($SWITCHBOARD_COREDNS or
// <module>/.bin/coredns; whoami, its nearest fixed-answer plugin), in
// interleaved rounds of a few seconds (DNSPERF_SECONDS, default 5;
// DNSPERF_ROUNDS, default 3) so that a busy machine hurts them alike. It
// prints a table of median QPS and the ratios; run it with
// -bench Dnsperf -benchtime 1x.
func BenchmarkDnsperf(b *testing.B) {
	dnsperf, err := exec.LookPath("dnsperf")
	if err != nil {
		b.Skip("dnsperf is not installed (Debian package dnsperf; ./test.sh installs it)")
	}
	seconds, rounds := 5, 3
	if s := os.Getenv("DNSPERF_SECONDS"); s != "" {
		seconds, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("DNSPERF_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	qfile := filepath.Join(b.TempDir(), "queries")
	if err := os.WriteFile(qfile, []byte("www.example.org A\nexample.org A\nfoo.example.org A\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	type peer struct {
		key, name, addr string
		qps             []float64
		lost            float64
	}
	var peers []*peer
	inst := startInstance(b, benchCorefile, nil)
	peers = append(peers, &peer{key: "switchboard", name: "switchboard", addr: inst.Servers()[0].UDPAddr().String()})
	n := dnsserver.UDPSockets
	dnsserver.UDPSockets = 1
	one := startInstance(b, benchCorefile, nil)
	dnsserver.UDPSockets = n
	peers = append(peers, &peer{key: "switchboard-1socket", name: "switchboard, 1 UDP socket", addr: one.Servers()[0].UDPAddr().String()})
	peers = append(peers, &peer{key: "miekg", name: "miekg/dns bare server", addr: bareServer(b)})
	if bin := corednsBinary(); bin != "" {
		peers = append(peers, &peer{key: "coredns", name: "CoreDNS 1.14.1 (whoami)", addr: startCoreDNS(b, bin, "example.org:%s {\n bind 127.0.0.1\n whoami\n}\n")})
	} else {
		b.Log("no CoreDNS binary ($SWITCHBOARD_COREDNS or .bin/coredns; ./test.sh installs it): CoreDNS left out")
	}
	run := func(addr string) (float64, float64) {
		host, port, _ := net.SplitHostPort(addr)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+30)*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, dnsperf, "-s", host, "-p", port, "-d", qfile, "-l", strconv.Itoa(seconds),
			"-c", "8", "-q", "200", "-T", "1").CombinedOutput()
		if err != nil {
			b.Fatalf("dnsperf: %v\n%s", err, out)
		}
		return parseDnsperf(string(out))
	}
	for i := 0; i < b.N; i++ {
		for range rounds {
			for _, p := range peers {
				q, l := run(p.addr)
				p.qps = append(p.qps, q)
				p.lost = max(p.lost, l)
			}
		}
	}
	median := func(x []float64) float64 {
		y := append([]float64(nil), x...)
		sort.Float64s(y)
		return y[len(y)/2]
	}
	base := median(peers[0].qps)
	var tab strings.Builder
	fmt.Fprintf(&tab, "\n%-28s %12s %10s %s\n", "server (fixed A answer)", "median QPS", "us/ratio", "rounds")
	for _, p := range peers {
		m := median(p.qps)
		fmt.Fprintf(&tab, "%-28s %12.0f %10.2f %v (max lost %.2f%%)\n", p.name, m, base/m, roundAll(p.qps), p.lost)
		b.ReportMetric(m, p.key+"-qps")
	}
	b.Log(tab.String())
}

func roundAll(x []float64) []int {
	out := make([]int, len(x))
	for i, v := range x {
		out[i] = int(v)
	}
	return out
}

var qpsRe = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
var lostRe = regexp.MustCompile(`Queries lost:\s+\d+ \(([0-9.]+)%\)`)

func parseDnsperf(out string) (qps, lost float64) {
	if m := qpsRe.FindStringSubmatch(out); m != nil {
		qps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := lostRe.FindStringSubmatch(out); m != nil {
		lost, _ = strconv.ParseFloat(m[1], 64)
	}
	return qps, lost
}

// corednsBinary finds a CoreDNS binary for comparisons.
func corednsBinary() string {
	if p := os.Getenv("SWITCHBOARD_COREDNS"); p != "" {
		return p
	}
	dir, _ := os.Getwd()
	for dir != "/" && dir != "." {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".bin", "coredns")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			return ""
		}
		dir = filepath.Dir(dir)
	}
	return ""
}

// startCoreDNS runs CoreDNS with corefile (a format with %s for the port)
// on a free port and returns its address once it answers.
func startCoreDNS(tb testing.TB, bin, corefile string) string {
	tb.Helper()
	port := freePort(tb)
	dir := tb.TempDir()
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(corefile, port)), 0o644); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", path, "-quiet")
	cmd.Dir = dir
	stderr, _ := cmd.StderrPipe()
	tb.Cleanup(func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			_ = strings.TrimSpace(s.Text())
		}
	}()
	addr := "127.0.0.1:" + port
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, err := c.Exchange(query("example.org.", dns.TypeA), addr); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			tb.Fatal("CoreDNS did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
