package nftables

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkSync reports, per size, the full sync, the full resync and one
// added service (incremental) in a throwaway namespace.
func BenchmarkSync(b *testing.B) {
	needRoot(b)
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d/endpoints=10", n), func(b *testing.B) {
			var full, resync, add, render float64
			for i := 0; i < b.N; i++ {
				m, err := MeasureSync(context.Background(), n, 10)
				if err != nil {
					b.Fatal(err)
				}
				full += m.FullSync.Seconds()
				resync += m.Resync.Seconds()
				add += m.AddOne.Seconds()
				render += m.Render.Seconds()
			}
			b.ReportMetric(full/float64(b.N)*1000, "full-ms")
			b.ReportMetric(resync/float64(b.N)*1000, "resync-ms")
			b.ReportMetric(add/float64(b.N)*1000, "add-one-ms")
			b.ReportMetric(render/float64(b.N)*1000, "render-ms")
		})
	}
}
