package prometheus_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/errors"
	"github.com/switchboard-dev/switchboard/dns/plugin/prometheus"
)

func init() { dnstest.RegisterAnswer() }

const corefile = `
example.org {
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    errors
    testanswer
}
example.net {
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    testanswer
}
fail.test {
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    testanswer {
        rcode SERVFAIL
    }
}
`

// TestMetrics checks CoreDNS's server metrics after real queries, with
// CoreDNS's labels (plugin/metrics README): server "dns://ADDR:PORT" as
// configured, zone the block's zone or "dropped" for what the server
// answers itself, plugin the one after prometheus that wrote (as
// CoreDNS's writer chain reports it), "" when the server wrote.
func TestMetrics(t *testing.T) {
	reg := prom.NewRegistry()
	env := dnstest.QuietEnv()
	env.Registerer, env.Gatherer = reg, reg
	inst := dnstest.StartInstance(t, corefile, env)
	udp := dnstest.UDPAddr(t, inst)
	tcp := inst.Servers()[0].TCPAddr().String()

	dnstest.Exchange(t, "udp", udp, dnstest.Query("example.org.", dns.TypeA))
	dnstest.Exchange(t, "udp", udp, dnstest.Query("a.example.net.", dns.TypeAAAA))
	dnstest.Exchange(t, "udp", udp, dnstest.Query("foo.com.", dns.TypeA)) // REFUSED by the server
	dnstest.Exchange(t, "tcp", tcp, dnstest.Query("www.Example.ORG.", dns.TypeMX))
	do := dnstest.Query("example.org.", dns.TypeNAPTR)
	do.SetEdns0(1232, true)
	dnstest.Exchange(t, "udp", udp, do)
	dnstest.Exchange(t, "udp", udp, dnstest.Query("x.fail.test.", dns.TypeA))

	const srv = `server="dns://127.0.0.1:0"`
	want := []string{
		`coredns_dns_requests_total{family="1",proto="udp",` + srv + `,type="A",view="",zone="example.org."} 1`,
		`coredns_dns_requests_total{family="1",proto="udp",` + srv + `,type="other",view="",zone="example.org."} 1`,
		`coredns_dns_requests_total{family="1",proto="tcp",` + srv + `,type="MX",view="",zone="example.org."} 1`,
		`coredns_dns_requests_total{family="1",proto="udp",` + srv + `,type="AAAA",view="",zone="example.net."} 1`,
		`coredns_dns_requests_total{family="1",proto="udp",` + srv + `,type="A",view="",zone="dropped"} 1`,
		`coredns_dns_responses_total{plugin="errors",rcode="NOERROR",` + srv + `,view="",zone="example.org."} 3`,
		`coredns_dns_responses_total{plugin="testanswer",rcode="NOERROR",` + srv + `,view="",zone="example.net."} 1`,
		`coredns_dns_responses_total{plugin="",rcode="REFUSED",` + srv + `,view="",zone="dropped"} 1`,
		`coredns_dns_responses_total{plugin="",rcode="SERVFAIL",` + srv + `,view="",zone="fail.test."} 1`,
		`coredns_dns_do_requests_total{` + srv + `,view="",zone="example.org."} 1`,
		`coredns_dns_request_duration_seconds_count{` + srv + `,view="",zone="example.org."} 3`,
		`coredns_dns_request_size_bytes_count{proto="udp",` + srv + `,view="",zone="example.org."} 2`,
		`coredns_dns_response_size_bytes_count{proto="tcp",` + srv + `,view="",zone="example.org."} 1`,
		`coredns_plugin_enabled{name="errors",` + srv + `,view="",zone="example.org."} 1`,
		`coredns_plugin_enabled{name="prometheus",` + srv + `,view="",zone="example.net."} 1`,
		`coredns_plugin_enabled{name="testanswer",` + srv + `,view="",zone="fail.test."} 1`,
		`coredns_panics_total 0`,
		`coredns_build_info{goversion="`,
	}

	// The same text over HTTP, where Prometheus scrapes it.
	var addr string
	for _, h := range inst.Configs[0].Handlers() {
		if m, ok := h.(*prometheus.Metrics); ok {
			addr = m.ListenAddr().String()
		}
	}
	if addr == "" {
		t.Fatal("no metrics address")
	}
	// A query is counted after its answer is sent: poll until every
	// count is in.
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(body)
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics lacks %s", missing)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if t.Failed() {
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "coredns_") && !strings.Contains(l, "_bucket") {
				t.Log(l)
			}
		}
	}
	if n := testutil.CollectAndCount(reg, "coredns_dns_requests_total"); n != 6 {
		t.Errorf("%d series of coredns_dns_requests_total, want 6 (series appear only once used)", n)
	}
}

// TestMetricsSurviveReload: the counts continue across a reload and the
// endpoint stays up (one listener shared by the old and the new instance).
func TestMetricsSurviveReload(t *testing.T) {
	reg := prom.NewRegistry()
	env := dnstest.QuietEnv()
	env.Registerer, env.Gatherer = reg, reg
	dnstest.RegisterAnswer()
	cf := "example.org:0 {\n bind 127.0.0.1\n prometheus 127.0.0.1:0\n testanswer\n}\n"
	svc := dnsserver.NewService("Corefile", dnsserver.Options{Env: env})
	t.Cleanup(func() { svc.Stop() })
	if err := svc.Start([]byte(cf)); err != nil {
		t.Fatal(err)
	}
	q := func() {
		dnstest.Exchange(t, "udp", dnstest.UDPAddr(t, svc.Instance()), dnstest.Query("example.org.", dns.TypeA))
	}
	q()
	if err := svc.Reload([]byte(cf)); err != nil {
		t.Fatal(err)
	}
	q()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		total := 0.0
		for _, mf := range got {
			if mf.GetName() == "coredns_dns_requests_total" {
				for _, m := range mf.GetMetric() {
					total += m.GetCounter().GetValue()
				}
			}
		}
		if total == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("coredns_dns_requests_total sums to %v after a reload, want 2", total)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParse(t *testing.T) {
	dnstest.RegisterAnswer()
	tests := []struct {
		corefile string
		err      string
	}{
		{"example.org:0 {\n prometheus\n testanswer\n}\n", ""},
		{"example.org:0 {\n prometheus 127.0.0.1:0\n}\n", ""},
		{"example.org:0 {\n prometheus a b\n}\n", "Wrong argument count"},
		{"example.org:0 {\n prometheus nonsense\n}\n", "missing port"},
		{"example.org:0 {\n prometheus\n prometheus\n}\n", "only be used once"},
	}
	for _, tc := range tests {
		_, err := dnsserver.NewInstance("Corefile", []byte(tc.corefile), dnsserver.Options{Env: dnstest.QuietEnv()})
		if tc.err == "" && err != nil {
			t.Errorf("%q: %v", tc.corefile, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "plugin/prometheus")) {
			t.Errorf("%q: error %v, want %q", tc.corefile, err, tc.err)
		}
	}
}
