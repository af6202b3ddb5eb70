package probe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// BenchmarkHTTPProbe measures one httpGet attempt (a fresh connection, as
// keep-alives are off) against a local server answering 200, beside the
// same GET done by a bare net/http client without keep-alives, so the
// probe's overhead reads as a ratio of the two.
func BenchmarkHTTPProbe(b *testing.B) {
	host, port := startHTTP(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprint(w, "ok")
	}), false)
	ctx := context.Background()

	b.Run("probe", func(b *testing.B) {
		p := httpGetProbe("/healthz", intstr.FromInt32(int32(port)))
		t := Target{Pod: testPod(), IP: host}
		b.ReportAllocs()
		for b.Loop() {
			if r, msg := Run(ctx, p, t); r != Success {
				b.Fatalf("probe failed: %s", msg)
			}
		}
	})
	b.Run("baseline=net-http-get", func(b *testing.B) {
		tr := &http.Transport{DisableKeepAlives: true}
		b.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr}
		url := fmt.Sprintf("http://%s:%d/healthz", host, port)
		b.ReportAllocs()
		for b.Loop() {
			res, err := c.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
		}
	})
}
