package log_test

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/log"
)

func init() { dnstest.RegisterAnswer() }

// ask sends m from a socket of its own and returns the client's port and
// the answer's length.
func ask(t *testing.T, network, addr string, m *dns.Msg) (int, int) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dc := &dns.Conn{Conn: c}
	if err := dc.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := dc.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	// {rsize} is the answer as the plugins wrote it, before the server
	// adds the client's OPT record (as in CoreDNS, whose recorder sits
	// above the scrubbing writer).
	extra := r.Extra[:0]
	for _, rr := range r.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	r.Extra = extra
	port := 0
	switch a := c.LocalAddr().(type) {
	case *net.UDPAddr:
		port = a.Port
	case *net.TCPAddr:
		port = a.Port
	}
	return port, r.Len()
}

func waitLines(t *testing.T, logs *dnstest.SafeBuffer, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := strings.TrimSuffix(logs.String(), "\n")
		lines := strings.Split(s, "\n")
		if s != "" && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d log lines, have:\n%s", n, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCommonLogFormat: the default line is CoreDNS's Common Log Format,
// `[INFO] {remote}:{port} - {>id} "{type} {class} {name} {proto} {size}
// {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}`, e.g.
// `[INFO] 127.0.0.1:57713 - 11742 "A IN example.org. udp 52 false 1232"
// NOERROR qr,aa,rd 91 0.000206582s` from CoreDNS 1.14.1.
func TestCommonLogFormat(t *testing.T) {
	logs := &dnstest.SafeBuffer{}
	env := dnstest.QuietEnv()
	env.QueryLog = logs
	inst := dnstest.StartInstance(t, "example.org {\n bind 127.0.0.1\n log\n testanswer\n}\n", env)
	udp := dnstest.UDPAddr(t, inst)
	tcp := inst.Servers()[0].TCPAddr().String()

	type sent struct {
		network string
		m       *dns.Msg
		port    int
		rsize   int
		do      bool
		bufsize int
	}
	q1 := dnstest.Query("WWW.example.org.", dns.TypeA)
	q2 := dnstest.Query("example.org.", dns.TypeMX)
	q2.SetEdns0(1232, true)
	q3 := dnstest.Query("example.org.", dns.TypeAAAA)
	var all []sent
	for _, s := range []sent{{network: "udp", m: q1, bufsize: 512}, {network: "udp", m: q2, do: true, bufsize: 1232}, {network: "tcp", m: q3, bufsize: 65535}} {
		addr := udp
		if s.network == "tcp" {
			addr = tcp
		}
		s.port, s.rsize = ask(t, s.network, addr, s.m)
		all = append(all, s)
	}
	lines := waitLines(t, logs, len(all))
	// A line is written after its answer is sent, so lines of queries
	// asked one after another may still be written in another order:
	// match them by query ID.
	byID := func(id uint16) string {
		for _, l := range lines {
			if strings.Contains(l, fmt.Sprintf(" - %d \"", id)) {
				return l
			}
		}
		return ""
	}
	for i, s := range all {
		lines := map[int]string{i: byID(s.m.Id)}
		want := fmt.Sprintf(`[INFO] 127.0.0.1:%d - %d "%s IN %s %s %d %v %d" NOERROR qr,aa,rd %d `,
			s.port, s.m.Id, dns.TypeToString[s.m.Question[0].Qtype], strings.ToLower(s.m.Question[0].Name),
			s.network, s.m.Len(), s.do, s.bufsize, s.rsize)
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d:\n got %s\nwant %s<duration>", i, lines[i], want)
			continue
		}
		if !regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(e-[0-9]+)?s$`).MatchString(strings.TrimPrefix(lines[i], want)) {
			t.Errorf("line %d: duration %q", i, strings.TrimPrefix(lines[i], want))
		}
	}
}

// TestClassesAndFormats: `class` keeps only the answers of the classes
// named (success, denial = NXDOMAIN and NODATA, error), names limit what
// is logged, and a format of placeholders replaces the common one.
func TestClassesAndFormats(t *testing.T) {
	logs := &dnstest.SafeBuffer{}
	env := dnstest.QuietEnv()
	env.QueryLog = logs
	cf := `
ok.test {
    bind 127.0.0.1
    log . "{proto} Request: {name} {type} {>id} {rcode} {/meta}" {
        class denial error
    }
    testanswer
}
nx.test {
    bind 127.0.0.1
    log . "{proto} Request: {name} {type} {>id} {rcode} {/meta}" {
        class denial
        class error
    }
    testanswer {
        rcode NXDOMAIN
    }
}
fail.test {
    bind 127.0.0.1
    log only.fail.test {combined}
    testanswer {
        rcode SERVFAIL
    }
}
`
	inst := dnstest.StartInstance(t, cf, env)
	udp := dnstest.UDPAddr(t, inst)
	queries := []*dns.Msg{
		dnstest.Query("ok.test.", dns.TypeA),             // success: not logged
		dnstest.Query("a.nx.test.", dns.TypeA),           // denial: logged
		dnstest.Query("x.fail.test.", dns.TypeA),         // outside the name: not logged
		dnstest.Query("x.only.fail.test.", dns.TypeAAAA), // logged, combined format
	}
	for _, q := range queries {
		dnstest.Exchange(t, "udp", udp, q)
	}
	lines := waitLines(t, logs, 2)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), logs)
	}
	want0 := fmt.Sprintf("[INFO] udp Request: a.nx.test. A %d NXDOMAIN -", queries[1].Id)
	if lines[0] != want0 {
		t.Errorf("got  %s\nwant %s", lines[0], want0)
	}
	// A code the server writes (SERVFAIL returned unwritten) has no
	// rcode in the log, as in CoreDNS ("-"); the combined format adds
	// the opcode.
	re := regexp.MustCompile(fmt.Sprintf(`^\[INFO\] 127\.0\.0\.1:\d+ - %d "AAAA IN x\.only\.fail\.test\. udp \d+ false 512" - - 0 \S+s "0"$`, queries[3].Id))
	if !re.MatchString(lines[1]) {
		t.Errorf("combined line %q does not match %s", lines[1], re)
	}
}

func TestParse(t *testing.T) {
	tests := []struct{ corefile, err string }{
		{"a.test:0 {\n log\n}\n", ""},
		{"a.test:0 {\n log a.test b.test {common}\n}\n", ""},
		{"a.test:0 {\n log {\n  class all\n }\n}\n", ""},
		{"a.test:0 {\n log {\n  class\n }\n}\n", "Wrong argument count"},
		{"a.test:0 {\n log {\n  class sometimes\n }\n}\n", "invalid Class: sometimes"},
		{"a.test:0 {\n log {\n  format x\n }\n}\n", "Wrong argument count"},
	}
	for _, tc := range tests {
		_, err := dnsserver.NewInstance("Corefile", []byte(tc.corefile), dnsserver.Options{Env: dnstest.QuietEnv()})
		if tc.err == "" && err != nil {
			t.Errorf("%q: %v", tc.corefile, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "plugin/log")) {
			t.Errorf("%q: error %v, want %q", tc.corefile, err, tc.err)
		}
	}
}
