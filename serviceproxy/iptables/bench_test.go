package iptables

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestRunBenchmarkSmall runs the exported benchmark helper at a small
// size: it must program a throwaway namespace and return sane rows.
func TestRunBenchmarkSmall(t *testing.T) {
	rows, err := RunBenchmark(context.Background(), BenchOptions{Sizes: []int{20}, EndpointsPerService: 3})
	if errors.Is(err, ErrNeedRoot) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Services != 20 || rows[0].Endpoints != 60 || rows[0].RestoreBytes == 0 || rows[0].FullSync <= 0 || rows[0].AddOne <= 0 {
		t.Fatalf("rows %+v", rows)
	}
}

// BenchmarkSync prints the iptables mode's sync times (go test -run x
// -bench Sync ./serviceproxy/iptables/): full sync at 100, 1,000 and
// 10,000 services × 10 endpoints, and one added service.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rows, err := RunBenchmark(context.Background(), BenchOptions{Sizes: []int{n}})
				if errors.Is(err, ErrNeedRoot) {
					b.Skip(err)
				}
				if err != nil {
					b.Fatal(err)
				}
				r := rows[0]
				b.ReportMetric(r.FullSync.Seconds(), "full-sync-s")
				b.ReportMetric(r.Render.Seconds(), "render-s")
				b.ReportMetric(r.AddOne.Seconds()*1000, "add-one-ms")
				b.ReportMetric(float64(r.RestoreBytes)/1e6, "restore-MB")
			}
		})
	}
}
