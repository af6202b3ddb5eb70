package iptables

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// ErrNeedRoot is returned by RunBenchmark when not running as root.
var ErrNeedRoot = errors.New("iptables benchmark: needs root to create a network namespace")

// BenchOptions shape RunBenchmark.
type BenchOptions struct {
	// Sizes are the service counts; default 100, 1,000, 10,000.
	Sizes []int
	// EndpointsPerService; default 10.
	EndpointsPerService int
	// Legacy measures iptables-legacy instead of iptables-nft.
	Legacy bool
}

// BenchRow is the measurement of one size.
type BenchRow struct {
	Services, Endpoints int
	// FullSync is a first Sync into an empty namespace (iptables-save,
	// render, one iptables-restore).
	FullSync time.Duration
	// Render is the part of FullSync spent rendering.
	Render time.Duration
	// RestoreBytes is the size of the full sync's iptables-restore input.
	RestoreBytes int
	// AddOne is a partial Sync adding one service (with its endpoints)
	// to the loaded state.
	AddOne time.Duration
}

// RunBenchmark measures the iptables mode for each size in a throwaway
// network namespace (an anonymous namespace of a locked OS thread that
// ends with the thread: nothing outlives the run, and nothing touches the
// caller's namespace). Times are wall-clock times of Proxier.Sync.
func RunBenchmark(ctx context.Context, opts BenchOptions) ([]BenchRow, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNeedRoot
	}
	if len(opts.Sizes) == 0 {
		opts.Sizes = []int{100, 1000, 10000}
	}
	if opts.EndpointsPerService <= 0 {
		opts.EndpointsPerService = 10
	}
	rows := make([]BenchRow, 0, len(opts.Sizes))
	for _, n := range opts.Sizes {
		if n <= 0 || n*opts.EndpointsPerService > 1<<22 {
			return rows, fmt.Errorf("iptables benchmark: size %d × %d endpoints out of range", n, opts.EndpointsPerService)
		}
		row, err := inThrowawayNetns(func() (BenchRow, error) { return benchOne(ctx, n, opts.EndpointsPerService, opts.Legacy) })
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// inThrowawayNetns runs f on a locked OS thread moved into a new,
// unnamed network namespace. The thread is never unlocked, so the Go
// runtime ends it when f returns, and the namespace goes with it.
func inThrowawayNetns[T any](f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			var zero T
			ch <- result{zero, fmt.Errorf("unshare(CLONE_NEWNET): %w", err)}
			return
		}
		v, err := f()
		ch <- result{v, err}
	}()
	r := <-ch
	return r.v, r.err
}

// BenchState returns a state of n ClusterIP services with eps endpoints
// each (service i: 10.96.0.0/12 + i, port 80; endpoints from
// 10.128.0.0/9, a third of them on this node).
func BenchState(n, eps int) *serviceproxy.State {
	st := &serviceproxy.State{
		Node:         serviceproxy.Node{Name: "bench-node"},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.128.0.0/9")},
		Services:     make(map[serviceproxy.ServicePortName]*serviceproxy.ServicePort, n),
		Endpoints:    make(map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint, n),
		Changed:      make(map[serviceproxy.ServicePortName]bool, n),
		Full:         true,
	}
	for i := 0; i < n; i++ {
		addBenchService(st, i, eps)
	}
	return st
}

func addBenchService(st *serviceproxy.State, i, eps int) serviceproxy.ServicePortName {
	name := serviceproxy.ServicePortName{
		NamespacedName: types.NamespacedName{Namespace: fmt.Sprintf("ns%d", i%100), Name: fmt.Sprintf("svc%d", i)},
		Port:           "http", Protocol: corev1.ProtocolTCP,
	}
	base := netip.MustParseAddr("10.96.0.0").As4()
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += uint32(i) + 1
	ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	st.Services[name] = &serviceproxy.ServicePort{
		Name: name, Type: corev1.ServiceTypeClusterIP, ClusterIPs: []netip.Addr{ip}, Port: 80, Protocol: corev1.ProtocolTCP,
	}
	list := make([]*serviceproxy.Endpoint, 0, eps)
	for j := 0; j < eps; j++ {
		k := uint32(i*eps+j) + 1
		e := uint32(10)<<24 | uint32(128)<<16 | k
		list = append(list, &serviceproxy.Endpoint{
			IP:   netip.AddrFrom4([4]byte{byte(e >> 24), byte(e >> 16), byte(e >> 8), byte(e)}),
			Port: 8080, Ready: true, Serving: true, IsLocal: j%3 == 0,
		})
	}
	st.Endpoints[name] = list
	st.Changed[name] = true
	return name
}

func benchOne(ctx context.Context, n, eps int, legacy bool) (BenchRow, error) {
	row := BenchRow{Services: n, Endpoints: n * eps}
	p, err := New(Config{Legacy: legacy, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return row, err
	}
	st := BenchState(n, eps)

	t0 := time.Now()
	req := &renderRequest{params: p.paramsFor(st, false, false), state: st, probs: &p.probs}
	res := render(req)
	row.Render = time.Since(t0)
	row.RestoreBytes = len(res.data)

	t0 = time.Now()
	if err := p.Sync(ctx, st); err != nil {
		return row, fmt.Errorf("full sync of %d services: %w", n, err)
	}
	row.FullSync = time.Since(t0)

	st.Full = false
	st.Changed = map[serviceproxy.ServicePortName]bool{}
	addBenchService(st, n, eps)
	t0 = time.Now()
	if err := p.Sync(ctx, st); err != nil {
		return row, fmt.Errorf("adding one service to %d: %w", n, err)
	}
	row.AddOne = time.Since(t0)
	return row, nil
}
