package probe

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
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

// minimalHTTP serves a fixed 200 "ok" on 127.0.0.1:0, closing each
// connection after one response, with as little work as possible, so that
// a benchmark's allocations and time are the client's.
func minimalHTTP(b *testing.B) (string, int) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nok")
	go func() {
		buf := make([]byte, 4096)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// One request at a time: read its head, answer, close.
			n := 0
			for n < len(buf) {
				m, err := c.Read(buf[n:])
				n += m
				if err != nil || bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
					break
				}
			}
			_, _ = c.Write(resp)
			_ = c.Close()
		}
	}()
	return splitHostPort(b, l.Addr().String())
}

// BenchmarkWorkerHTTP is one tick of a readiness worker probing httpGet
// (with metrics and a recorder, as the node runs it) against a server
// that does almost nothing, so that time and allocations are the
// worker's: request, connection, response, thresholds, metrics.
func BenchmarkWorkerHTTP(b *testing.B) {
	host, port := minimalHTTP(b)
	pod := testPod()
	ctr := &corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	st := ContainerState{ID: "c1", Running: true, StartedAt: time.Now().Add(-time.Hour), Started: true}
	w := newWorker(WorkerConfig{
		Kind: Readiness, Probe: httpGetProbe("/healthz", intstr.FromString("http")), Pod: pod, Container: ctr,
		State:    func() (ContainerState, bool) { return st, true },
		Target:   func() Target { return Target{Pod: pod, Container: ctr, IP: host} },
		Recorder: &fakeRecorder{},
		Metrics:  NewMetrics(prometheus.NewRegistry()),
	})
	ctx := context.Background()
	w.doProbe(ctx)
	b.ReportAllocs()
	for b.Loop() {
		w.doProbe(ctx)
	}
	if w.result() != Success {
		b.Fatalf("result %v", w.result())
	}
}
