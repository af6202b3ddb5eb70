package userspace

import (
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/internal/testutil"
)

// Ports below net.ipv4.ip_unprivileged_port_start need
// CAP_NET_BIND_SERVICE. The test drops that capability from one locked
// thread (capabilities are per thread; the thread is discarded after)
// and syncs from it.
func TestPrivilegedPortWarnsOnceAndIsNotRemapped(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	var logs testutil.SyncBuffer
	reg := prometheus.NewRegistry()
	p, err := New(Config{Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cleanup(t.Context()) })
	w := newWorld()
	svc := clusterIPService("web", corev1.ProtocolTCP, sb.ip(1), 80)
	w.set(svc, endpoint(netip.AddrPortFrom(sb.ip(10), 8080)))

	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_BIND_SERVICE
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		for range 2 {
			if err := p.Sync(t.Context(), w.st); err != nil {
				done <- err
				return
			}
			w.st.Changed[svc.Name] = true
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if unix.Geteuid() != 0 {
		// Without root the capability was never there: same result.
		t.Log("not root: the port is privileged anyway")
	}
	if n := counterValue(t, reg, "kubeproxy_userspace_bind_failures_total", map[string]string{"reason": "permission"}); n != 1 {
		t.Errorf("bind_failures_total{reason=permission} = %v after two syncs, want 1", n)
	}
	if got := strings.Count(logs.String(), "privileged port"); got != 1 {
		t.Errorf("%d warnings about the privileged port, want 1:\n%s", got, logs.String())
	}
	if got := p.Addresses(); len(got) != 0 {
		t.Errorf("listeners %v: the port must not be remapped", got)
	}
}

// In the process's own namespace (the host, for a node agent) the
// default AddressesAuto never adds an address: a cluster IP that is not
// local is logged and counted, and the interface is left alone.
func TestNoAddressAddedInProcessNamespace(t *testing.T) {
	t.Parallel()
	p, reg := newProxier(t)
	w := newWorld()
	ip := netip.MustParseAddr("192.0.2.77") // TEST-NET-1: never local here
	w.set(clusterIPService("far", corev1.ProtocolTCP, ip, 18080))
	w.sync(t, p)
	if n := counterValue(t, reg, "kubeproxy_userspace_bind_failures_total", map[string]string{"reason": "not_local"}); n != 1 {
		t.Errorf("bind_failures_total{reason=not_local} = %v, want 1", n)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if strings.HasPrefix(a.String(), ip.String()+"/") {
			t.Fatalf("%s was added to an interface of the process's namespace", a)
		}
	}
}
