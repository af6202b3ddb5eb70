package prometheus_test

import (
	"testing"

	"github.com/miekg/dns"
	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

// BenchmarkServeWithMetrics is the server's packet path with and without
// the prometheus plugin in the chain: the difference is what counting a
// query costs.
func BenchmarkServeWithMetrics(b *testing.B) {
	dnstest.RegisterAnswer()
	for _, tc := range []struct{ name, corefile string }{
		{"without", "example.org {\n testanswer\n}\n"},
		{"with", "example.org {\n prometheus 127.0.0.1:0\n testanswer\n}\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reg := prom.NewRegistry()
			env := dnstest.QuietEnv()
			env.Registerer, env.Gatherer = reg, reg
			inst, err := dnsserver.NewInstance("Corefile", []byte(tc.corefile), dnsserver.Options{Port: "0", Env: env})
			if err != nil {
				b.Fatal(err)
			}
			srv := inst.Servers()[0]
			q := dnstest.Query("www.example.org.", dns.TypeA)
			q.SetEdns0(1232, false)
			pkt, _ := q.Pack()
			w := &dnstest.Writer{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				srv.ServePacket(w, pkt)
			}
		})
	}
}
