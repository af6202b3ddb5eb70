package probe

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// STUB: replaced by the real implementation (helper working on node/probe).

type worker struct{ cfg WorkerConfig }

func newWorker(cfg WorkerConfig) *worker            { return &worker{cfg: cfg} }
func (w *worker) run(ctx context.Context)           { <-ctx.Done() }
func (w *worker) result() Result                    { return Unknown }
func newMetrics(reg prometheus.Registerer) *Metrics { return &Metrics{} }
func runProbe(ctx context.Context, p *corev1.Probe, t Target) (Result, string) {
	return Failure, "not implemented"
}
