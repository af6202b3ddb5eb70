package alias

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/file"
)

func rrs(t *testing.T, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		r, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func strs(rs []dns.RR) []string {
	var out []string
	for _, r := range rs {
		out = append(out, strings.Join(strings.Fields(r.String()), " "))
	}
	return out
}

func TestFlatten(t *testing.T) {
	nsCom := "example.com. 3600 IN NS ns1.example.com."
	tests := []struct {
		name   string
		answer []string
		ns     []string
		want   []string
	}{
		{"README: the CNAME chain at the apex becomes the apex's A record",
			[]string{"example.com. 3600 IN CNAME two.example.org.", "two.example.org. 3600 IN CNAME one.example.net.", "one.example.net. 3600 IN A 127.0.0.1"},
			[]string{nsCom}, []string{"example.com. 3600 IN A 127.0.0.1"}},
		{"README: TTL is the smallest of the chain",
			[]string{"example.com. 300 IN CNAME some.magic.example.org.", "some.magic.example.org. 299 IN A 123.123.45.67"},
			[]string{nsCom}, []string{"example.com. 299 IN A 123.123.45.67"}},
		{"a CNAME TTL lower than the address's wins",
			[]string{"example.com. 60 IN CNAME a.example.org.", "a.example.org. 3600 IN A 192.0.2.1", "a.example.org. 3600 IN A 192.0.2.2"},
			[]string{nsCom}, []string{"example.com. 60 IN A 192.0.2.1", "example.com. 60 IN A 192.0.2.2"}},
		{"AAAA records are flattened too",
			[]string{"example.com. 3600 IN CNAME a.example.org.", "a.example.org. 30 IN AAAA 2001:db8::1"},
			[]string{nsCom}, []string{"example.com. 30 IN AAAA 2001:db8::1"}},
		{"no NS in authority: the zone is unknown, nothing changes",
			[]string{"example.com. 3600 IN CNAME a.example.org.", "a.example.org. 3600 IN A 192.0.2.1"},
			nil, []string{"example.com. 3600 IN CNAME a.example.org.", "a.example.org. 3600 IN A 192.0.2.1"}},
		{"a CNAME below the apex is left alone",
			[]string{"www.example.com. 3600 IN CNAME a.example.org.", "a.example.org. 3600 IN A 192.0.2.1"},
			[]string{nsCom}, []string{"www.example.com. 3600 IN CNAME a.example.org.", "a.example.org. 3600 IN A 192.0.2.1"}},
		{"the zone is the owner of the last NS record",
			[]string{"example.net. 3600 IN CNAME a.example.org.", "a.example.org. 3600 IN A 192.0.2.1"},
			[]string{nsCom, "example.net. 3600 IN NS ns.example.net."}, []string{"example.net. 3600 IN A 192.0.2.1"}},
		{"the chain is followed in answer order only: an earlier link is renamed, not removed",
			[]string{"a.example.org. 600 IN CNAME b.example.org.", "example.com. 3600 IN CNAME a.example.org.", "b.example.org. 3600 IN A 192.0.2.1"},
			[]string{nsCom}, []string{"example.com. 600 IN CNAME b.example.org.", "b.example.org. 3600 IN A 192.0.2.1"}},
		{"a chain without addresses leaves an empty answer",
			[]string{"example.com. 3600 IN CNAME a.example.org."},
			[]string{nsCom}, nil},
		{"an answer without CNAME is unchanged",
			[]string{"example.com. 3600 IN A 192.0.2.1"},
			[]string{nsCom}, []string{"example.com. 3600 IN A 192.0.2.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
			m.Answer, m.Ns = rrs(t, tc.answer...), rrs(t, tc.ns...)
			before := strs(m.Answer)
			out := Flatten(m)
			if got, want := strs(out.Answer), strs(rrs(t, tc.want...)); !slices.Equal(got, want) {
				t.Errorf("answer\n%v\nwant\n%v", got, want)
			}
			if !slices.Equal(strs(m.Answer), before) {
				t.Errorf("the original message changed: %v", strs(m.Answer))
			}
			if !slices.Equal(strs(out.Ns), strs(m.Ns)) {
				t.Errorf("authority changed")
			}
		})
	}
}

// TestServeDNS: alias wraps the writer of the next plugin.
func TestServeDNS(t *testing.T) {
	next := plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg).SetReply(r)
		m.Answer = rrs(t, "example.com. 3600 IN CNAME a.example.org.", "a.example.org. 120 IN A 192.0.2.1")
		m.Ns = rrs(t, "example.com. 3600 IN NS ns1.example.com.")
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	w := &dnstest.Writer{}
	if _, err := (Alias{Next: next}).ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion("example.com.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if got := strs(w.Msg.Answer); !slices.Equal(got, []string{"example.com. 120 IN A 192.0.2.1"}) {
		t.Errorf("answer %v", got)
	}
	if rc, err := (Alias{}).ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion("example.com.", dns.TypeA)); rc != dns.RcodeServerFailure || err == nil {
		t.Errorf("no next: %d %v", rc, err)
	}
	if !(Alias{}).Ready() {
		t.Error("not ready")
	}
}

func TestSetup(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr string
	}{
		{"alias", ""},
		{"alias extra", "Corefile:1 - Error during parsing: Wrong argument count"},
		{"alias {\n x\n}", "Corefile:1 - Error during parsing: Unexpected token '{'"},
	} {
		c := &dnsserver.Controller{
			Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(tc.in)),
			Directive: pluginName,
			Config:    &dnsserver.Config{Zone: ".", Zones: []string{"."}},
		}
		err := setup(c)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("setup(%q) = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

// TestCorefile is the upstream plugin's own end-to-end test: example.org
// has a CNAME at its apex to www.foo.example.org, a name of another
// server block; with alias the A query for example.org is answered with
// that name's address, owned by example.org.
func TestCorefile(t *testing.T) {
	dir := t.TempDir()
	org, foo := filepath.Join(dir, "db.example.org"), filepath.Join(dir, "db.foo.example.org")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(org, "$ORIGIN example.org.\n@\t3600 IN\tSOA   sns.dns.icann.org. noc.dns.icann.org. 2017042745 7200 3600 1209600 3600\n    3600 IN NS    b.iana-servers.net.\n    3600 IN CNAME www.foo\n")
	write(foo, "$ORIGIN foo.example.org.\n@\t3600 IN\tSOA sns.dns.icann.org. noc.dns.icann.org. 2017042745 7200 3600 1209600 3600\n    3600 IN NS  b.iana-servers.net.\nwww 300 IN A   127.0.0.53\n")
	inst, err := dnsserver.NewInstance("Corefile", []byte(`example.org {
		bind 127.0.0.1
		file `+org+` example.org
		alias
	}
	foo.example.org {
		bind 127.0.0.1
		file `+foo+` foo.example.org
	}`), dnsserver.Options{Port: "0", Env: &dnsserver.Env{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop() })
	if err := inst.Start(); err != nil {
		t.Fatal(err)
	}
	addr := inst.Servers()[0].UDPAddr().String()

	m, err := dns.Exchange(new(dns.Msg).SetQuestion("example.org.", dns.TypeA), addr)
	if err != nil {
		t.Fatal(err)
	}
	if got := strs(m.Answer); m.Rcode != dns.RcodeSuccess || !slices.Equal(got, []string{"example.org. 300 IN A 127.0.0.53"}) {
		t.Errorf("flattened answer %v (%s), want example.org. 300 IN A 127.0.0.53", got, dns.RcodeToString[m.Rcode])
	}
	// The other block has no alias: its answers are as file gives them.
	m, err = dns.Exchange(new(dns.Msg).SetQuestion("www.foo.example.org.", dns.TypeA), addr)
	if err != nil {
		t.Fatal(err)
	}
	if got := strs(m.Answer); !slices.Equal(got, []string{"www.foo.example.org. 300 IN A 127.0.0.53"}) {
		t.Errorf("target answer %v", got)
	}

	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Log("dig not installed; skipping its check (./test.sh installs bind9-dnsutils)")
		return
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, dig, "@"+host, "-p", port, "+tries=1", "+time=2", "+noall", "+answer", "example.org", "A").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	if got := strings.Join(strings.Fields(string(out)), " "); got != "example.org. 300 IN A 127.0.0.53" {
		t.Errorf("dig answer %q", got)
	}
}
