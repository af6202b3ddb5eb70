package dnsserver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
)

// TestCorefileSyntax checks the Corefile syntax CoreDNS documents
// (corefile(5)): environment variables, snippets and import, comments,
// quoted arguments, nested blocks, the dns:// scheme and several zones per
// block; each case is served and answers.
func TestCorefileSyntax(t *testing.T) {
	t.Setenv("SB_TEST_ZONE", "env.test")
	t.Setenv("SB_TEST_IP", "192.0.2.77")
	dir := t.TempDir()
	imported := filepath.Join(dir, "imported.conf")
	if err := os.WriteFile(imported, []byte("imported.test {\n  bind 127.0.0.1\n  testanswer 192.0.2.66\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	corefile := `# a comment
(common) {
    bind 127.0.0.1   # comment after a directive
}
{$SB_TEST_ZONE} {
    import common
    testanswer {$SB_TEST_IP}
}
dns://scheme.test a.multi.test b.multi.test {
    import common
    testanswer "192.0.2.55"
}
nested.test {
    import common
    testanswer {
        records 3
    }
}
import ` + imported + `
`
	inst := startInstance(t, corefile, nil)
	addr := udpAddr(t, inst)
	tests := []struct {
		qname   string
		answers int
		first   string
	}{
		{"env.test.", 1, "192.0.2.77"},
		{"scheme.test.", 1, "192.0.2.55"},
		{"x.a.multi.test.", 1, "192.0.2.55"},
		{"x.b.multi.test.", 1, "192.0.2.55"},
		{"nested.test.", 3, "10.0.0.0"},
		{"imported.test.", 1, "192.0.2.66"},
	}
	for _, tc := range tests {
		t.Run(tc.qname, func(t *testing.T) {
			r := exchange(t, "udp", addr, query(tc.qname, dns.TypeA))
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != tc.answers {
				t.Fatalf("rcode %s with %d answers, want NOERROR with %d", rcodeName(r.Rcode), len(r.Answer), tc.answers)
			}
			if got := r.Answer[0].(*dns.A).A.String(); got != tc.first {
				t.Errorf("first answer %s, want %s", got, tc.first)
			}
		})
	}
}

// TestCorefileErrors: a bad Corefile is an error that names the file, the
// line and the plugin, and nothing is started.
func TestCorefileErrors(t *testing.T) {
	tests := []struct {
		name     string
		corefile string
		want     []string
	}{
		{"unknown directive", "example.org {\n  testanswer\n  nosuchplugin\n}\n",
			[]string{"Corefile:3", "Unknown directive 'nosuchplugin'"}},
		{"CoreDNS plugin we do not have", "example.org {\n  loop\n}\n",
			[]string{"Corefile:2", "Unknown directive 'loop'"}},
		{"plugin argument error", "example.org {\n  testanswer\n  testanswer 1 2\n}\n",
			[]string{"Corefile:3", "plugin/testanswer", "Wrong argument count"}},
		{"plugin block error", "example.org {\n  testanswer {\n    bogus\n  }\n}\n",
			[]string{"Corefile:3", "plugin/testanswer", "unknown property"}},
		{"bind error names the plugin", "example.org {\n  bind nonsense-iface\n}\n",
			[]string{"Corefile:2", "plugin/bind", "nonsense-iface"}},
		{"directive without a plugin in this build", "example.org {\n  hosts\n}\n",
			[]string{"Corefile:2", "plugin/hosts"}},
		{"zone defined twice", "example.org {\n testanswer\n}\nexample.org {\n testanswer\n}\n",
			[]string{"Corefile:4", "cannot serve dns://example.org.:0 - it is already defined"}},
		{"unsupported transport", "tls://example.org {\n testanswer\n}\n",
			[]string{"Corefile:1", "tls:// is not supported"}},
		{"bad zone name", "exa..mple.org {\n testanswer\n}\n",
			[]string{"Corefile:1", "not a valid domain name"}},
		{"bad port", "example.org:99999 {\n testanswer\n}\n",
			[]string{"Corefile:1", "port out of range"}},
		{"unclosed block", "example.org {\n testanswer {\n",
			[]string{"Corefile:", "Unexpected EOF"}},
		{"missing import", "example.org {\n import /nonexistent/sb-file\n}\n",
			[]string{"Corefile:2", "File to import not found"}},
		{"empty", "# nothing\n", []string{"Corefile", "no server block"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := dnsserver.NewInstance("Corefile", []byte(tc.corefile), dnsserver.Options{Port: "0", Env: quietEnv()})
			if err == nil {
				inst.Stop()
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestChainOrder: plugins run in Directives order, not in the order
// written (CoreDNS's plugin.cfg), and Handlers lists them so.
func TestChainOrder(t *testing.T) {
	inst, err := dnsserver.NewInstance("Corefile", []byte("example.org {\n testanswer\n bind 127.0.0.1\n}\n"), dnsserver.Options{Port: "0", Env: quietEnv()})
	if err != nil {
		t.Fatal(err)
	}
	c := inst.Configs[0]
	if c.Zone != "example.org." || c.Port != "0" || len(c.ListenHosts) != 1 || c.ListenHosts[0] != "127.0.0.1" {
		t.Fatalf("config %+v", c)
	}
	hs := c.Handlers()
	if len(hs) != 1 || hs[0].Name() != "testanswer" || c.Handler("testanswer") == nil {
		t.Fatalf("handlers %v", hs)
	}
	if got := c.ServerAddrs(); len(got) != 1 || got[0] != "dns://127.0.0.1:0" {
		t.Errorf("server addrs %v", got)
	}
}
