package sandbox

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func pod(uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p-" + uid, Namespace: "default", UID: types.UID(uid)}}
}

func TestNewLoopbackValidation(t *testing.T) {
	for _, tc := range []struct {
		cidr    string
		wantErr string
	}{
		{"", ""}, // the default range
		{"127.200.1.0/24", ""},
		{"127.0.0.0/8", ""},
		{"127.9.9.0/30", ""},
		{"127.9.9.0/31", "too small"},
		{"10.0.0.0/24", "inside 127.0.0.0/8"},
		{"::1/128", "IPv4"},
	} {
		t.Run(tc.cidr, func(t *testing.T) {
			var p netip.Prefix
			if tc.cidr != "" {
				p = netip.MustParsePrefix(tc.cidr)
			}
			l, err := NewLoopback(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewLoopback(%s) = %v, want error containing %q", tc.cidr, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.cidr == "" && l.PodCIDR() != DefaultLoopbackCIDR {
				t.Errorf("default CIDR = %s, want %s", l.PodCIDR(), DefaultLoopbackCIDR)
			}
			if want := l.PodCIDR().Addr().Next(); l.HostIP() != want {
				t.Errorf("host IP = %s, want network+1 = %s", l.HostIP(), want)
			}
		})
	}
}

func TestLoopbackAllocation(t *testing.T) {
	l, err := NewLoopback(netip.MustParsePrefix("127.201.7.0/29")) // .2 .. .6 for pods
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	seen := map[netip.Addr]string{}
	for i := 0; i < 5; i++ {
		uid := fmt.Sprint(i)
		n, err := l.Setup(ctx, pod(uid))
		if err != nil {
			t.Fatalf("setup %d: %v", i, err)
		}
		if len(n.IPs) != 1 || !l.PodCIDR().Contains(n.IPs[0]) {
			t.Fatalf("setup %d: IPs %v not one address in %s", i, n.IPs, l.PodCIDR())
		}
		if n.HostIP != l.HostIP() {
			t.Errorf("setup %d: host IP %s, want %s", i, n.HostIP, l.HostIP())
		}
		if n.IPs[0] == l.HostIP() || n.IPs[0] == l.PodCIDR().Addr() || n.IPs[0] == lastAddr(l.PodCIDR()) {
			t.Errorf("setup %d: got reserved address %s", i, n.IPs[0])
		}
		if other, dup := seen[n.IPs[0]]; dup {
			t.Fatalf("pods %s and %s share %s", other, uid, n.IPs[0])
		}
		seen[n.IPs[0]] = uid
		// Setup is idempotent per pod UID.
		again, err := l.Setup(ctx, pod(uid))
		if err != nil || again.IPs[0] != n.IPs[0] {
			t.Fatalf("second setup of %s: %v %v, want %s", uid, again.IPs, err, n.IPs[0])
		}
	}
	if _, err := l.Setup(ctx, pod("full")); err == nil || !strings.Contains(err.Error(), "no free address") {
		t.Fatalf("setup in a full range: %v, want an error", err)
	}
	// Teardown releases; teardown twice is fine.
	first, _ := l.Setup(ctx, pod("0"))
	if err := l.Teardown(ctx, pod("0")); err != nil {
		t.Fatal(err)
	}
	if err := l.Teardown(ctx, pod("0")); err != nil {
		t.Fatal(err)
	}
	n, err := l.Setup(ctx, pod("new"))
	if err != nil {
		t.Fatalf("setup after teardown: %v", err)
	}
	if n.IPs[0] != first.IPs[0] {
		t.Errorf("the only free address is %s, got %s", first.IPs[0], n.IPs[0])
	}
}

func TestLoopbackRoundRobin(t *testing.T) {
	// Like host-local IPAM, a released address is not handed out again
	// while others are free.
	l, err := NewLoopback(netip.MustParsePrefix("127.202.3.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, _ := l.Setup(ctx, pod("a"))
	_ = l.Teardown(ctx, pod("a"))
	b, _ := l.Setup(ctx, pod("b"))
	if a.IPs[0] == b.IPs[0] {
		t.Errorf("released address %s reused at once", a.IPs[0])
	}
}

func TestLoopbackHostNetwork(t *testing.T) {
	l, err := NewLoopback(netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	p := pod("h")
	p.Spec.HostNetwork = true
	n, err := l.Setup(context.Background(), p)
	if err != nil || len(n.IPs) != 1 || n.IPs[0] != l.HostIP() {
		t.Fatalf("hostNetwork pod got %v %v, want the node's address %s", n.IPs, err, l.HostIP())
	}
}

// TestLoopbackAddressesBind shows the premise of the sandbox: a pod's
// address can be bound without root because 127.0.0.0/8 routes to lo.
func TestLoopbackAddressesBind(t *testing.T) {
	l, err := NewLoopback(netip.MustParsePrefix("127.203.9.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var addrs []string
	for _, uid := range []string{"x", "y"} {
		n, err := l.Setup(ctx, pod(uid))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Teardown(ctx, pod(uid)) })
		addrs = append(addrs, n.IPs[0].String())
	}
	// Both pods listen on the same port, each on its own address.
	var port string
	for i, a := range addrs {
		addr := net.JoinHostPort(a, "0")
		if port != "" {
			addr = net.JoinHostPort(a, port)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on pod address %s: %v", addr, err)
		}
		t.Cleanup(func() { ln.Close() })
		if i == 0 {
			_, port, _ = net.SplitHostPort(ln.Addr().String())
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte(a))
				c.Close()
			}
		}()
	}
	for _, a := range addrs {
		c, err := net.Dial("tcp", net.JoinHostPort(a, port))
		if err != nil {
			t.Fatalf("dial %s: %v", a, err)
		}
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Close()
		if string(buf[:n]) != a {
			t.Errorf("dial %s:%s reached the listener of %q", a, port, buf[:n])
		}
	}
}
