package nftables

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// BenchState builds a State of n ClusterIP services (TCP port 80, cluster
// IPs from 10.96.0.0/12) with eps ready endpoints each (port 8080, unique
// addresses from 10.128.0.0/9, on other nodes), for benchmarks.
func BenchState(n, eps int) *serviceproxy.State {
	st := &serviceproxy.State{
		Node:         serviceproxy.Node{Name: "bench-node", IPs: []netip.Addr{netip.MustParseAddr("192.168.0.2")}},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.128.0.0/9")},
		Services:     make(map[serviceproxy.ServicePortName]*serviceproxy.ServicePort, n),
		Endpoints:    make(map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint, n),
		Full:         true,
	}
	for i := 0; i < n; i++ {
		addBenchService(st, i, eps)
	}
	return st
}

func benchAddr(base netip.Addr, i int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

var (
	benchSvcBase = netip.MustParseAddr("10.96.0.1")
	benchEpBase  = netip.MustParseAddr("10.128.0.1")
)

func addBenchService(st *serviceproxy.State, i, eps int) serviceproxy.ServicePortName {
	name := serviceproxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "bench", Name: fmt.Sprintf("svc-%d", i)}, Protocol: corev1.ProtocolTCP}
	st.Services[name] = &serviceproxy.ServicePort{Name: name, Type: corev1.ServiceTypeClusterIP,
		ClusterIPs: []netip.Addr{benchAddr(benchSvcBase, i)}, Port: 80, Protocol: corev1.ProtocolTCP}
	list := make([]*serviceproxy.Endpoint, eps)
	for j := range list {
		list[j] = &serviceproxy.Endpoint{IP: benchAddr(benchEpBase, i*eps+j), Port: 8080, Ready: true, Serving: true, NodeName: "other"}
	}
	st.Endpoints[name] = list
	return name
}

// SyncMeasurement is what MeasureSync found.
type SyncMeasurement struct {
	Services, EndpointsPerService int
	// FullSync is the first sync of the whole state (the table created).
	FullSync time.Duration
	// Resync is a second full sync of the same state (flush and refill).
	Resync time.Duration
	// AddOne is the incremental sync that adds one service (with the same
	// number of endpoints) to the loaded state.
	AddOne time.Duration
	// Render is the time to print the whole state as a script (no kernel).
	Render time.Duration
}

// MeasureSync syncs a BenchState of services x endpoints into a throwaway
// network namespace (created on a locked thread that exits afterwards, so
// the namespace goes with it) and times a full sync, a full resync and one
// added service. It needs root.
func MeasureSync(ctx context.Context, services, endpoints int) (SyncMeasurement, error) {
	m := SyncMeasurement{Services: services, EndpointsPerService: endpoints}
	if os.Geteuid() != 0 {
		return m, errors.New("nftables: MeasureSync needs root (it creates a network namespace)")
	}
	st := BenchState(services, endpoints)
	p, err := New(Config{IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}})
	if err != nil {
		return m, err
	}
	start := time.Now()
	if _, err := p.Render(st); err != nil {
		return m, err
	}
	m.Render = time.Since(start)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread and its namespace end with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		errc <- func() error {
			start := time.Now()
			if err := p.Sync(ctx, st); err != nil {
				return err
			}
			m.FullSync = time.Since(start)
			start = time.Now()
			if err := p.Sync(ctx, st); err != nil {
				return err
			}
			m.Resync = time.Since(start)
			next := &serviceproxy.State{Node: st.Node, ClusterCIDRs: st.ClusterCIDRs, Services: st.Services, Endpoints: st.Endpoints}
			n := addBenchService(next, services, endpoints)
			next.Changed = map[serviceproxy.ServicePortName]bool{n: true}
			start = time.Now()
			if err := p.Sync(ctx, next); err != nil {
				return err
			}
			m.AddOne = time.Since(start)
			return nil
		}()
	}()
	return m, <-errc
}
