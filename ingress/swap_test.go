package ingress

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
)

// TestTableSwapsUnderLoad: "atomic swap of the routing table on every
// change (no dropped connections, measured under load)". Clients keep
// kept-alive connections busy over plain HTTP (GETs on the fast path,
// POSTs on the net/http path) and over TLS, while the served Ingress's
// annotations change, its certificate is rotated and other Ingresses
// come and go, each change a new routing table swapped in. Not one
// request fails and no connection is dropped: every client ends on the
// connections it started with.
func TestTableSwapsUnderLoad(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	e.create(classObj("switchboard", true))
	e.backendService("shop", "web")
	secret, _ := tlsSecretObj(t, "shop", "load-tls", "load.test")
	shop := func(readTimeout string) *networkingv1.Ingress {
		ing := annotated(ingressObj("shop", "load", "load.test", pathRule("Prefix", "/", "web", 80)),
			annotations.SSLRedirect, "false", annotations.ReadTimeout, readTimeout)
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"load.test"}, SecretName: "load-tls"}}
		return ing
	}
	e.create(secret, shop("30"))
	e.settle()

	type client struct {
		name   string
		scheme string
		method string
	}
	clients := []client{
		{"http GET (fast path)", "http", http.MethodGet},
		{"http GET (fast path) 2", "http", http.MethodGet},
		{"http POST (net/http path)", "http", http.MethodPost},
		{"https GET (fast path)", "https", http.MethodGet},
		{"https POST (net/http path)", "https", http.MethodPost},
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	var total atomic.Int64
	type result struct {
		failed int
		first  string
		conns  int64
	}
	results := make([]result, len(clients))
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dials atomic.Int64
			addr := e.http
			if cl.scheme == "https" {
				addr = e.https
			}
			dial := dialTo(addr)
			tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true,
				TLSClientConfig: &tls.Config{ServerName: "load.test", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}},
				DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
					dials.Add(1)
					return dial(ctx, network, a)
				}}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			r := &results[i]
			for ctx.Err() == nil {
				var body io.Reader
				if cl.method == http.MethodPost {
					body = bytes.NewReader([]byte("order"))
				}
				req, _ := http.NewRequest(cl.method, cl.scheme+"://load.test/", body)
				err := doOK(hc, req)
				total.Add(1)
				if err != nil {
					if r.failed == 0 {
						r.first = err.Error()
					}
					r.failed++
				}
			}
			r.conns = dials.Load()
		}()
	}

	// The changes: each is a new routing table.
	syncs0 := testutil.ToFloat64(e.c.metrics.syncs)
	fast0, fastTLS0 := e.c.fastHTTP.served.Load(), e.c.fastHTTPS.served.Load()
	// Each round waits for its tables: at least two swaps a round.
	routed := func(host string, want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for (e.c.Table().Match(host, "/") != nil) != want {
			if time.Now().After(deadline) {
				t.Fatalf("routing table: %s routed %v, want %v", host, !want, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	const rounds = 100
	for i := 0; i < rounds; i++ {
		e.apply(shop(fmt.Sprint(30 + i%2)))
		host := fmt.Sprintf("o%d.test", i)
		other := ingressObj("other", fmt.Sprintf("other-%d", i), host, pathRule("Exact", "/", "web", 80))
		e.create(other)
		if i%10 == 0 {
			rotated, _ := tlsSecretObj(t, "shop", "load-tls", "load.test")
			e.apply(rotated)
		}
		routed(host, true)
		if err := s.Delete(cluster.KindIngress, "other", other.Name, cluster.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		routed(host, false)
	}
	e.settle()
	stop()
	wg.Wait()
	swaps := testutil.ToFloat64(e.c.metrics.syncs) - syncs0
	if swaps < 2*rounds {
		t.Errorf("%v routing tables swapped in during the load, want at least %d", swaps, 2*rounds)
	}
	if e.c.fastHTTP.served.Load() == fast0 || e.c.fastHTTPS.served.Load() == fastTLS0 {
		t.Error("the fast path served none of the GETs (plain or TLS)")
	}
	for i, r := range results {
		if r.failed > 0 {
			t.Errorf("%s: %d requests failed (first: %s)", clients[i].name, r.failed, r.first)
		}
		if r.conns != 1 {
			t.Errorf("%s: %d connections dialled, want the one it started with (a connection was dropped)", clients[i].name, r.conns)
		}
	}
	t.Logf("%d requests over %d clients during %v table swaps", total.Load(), len(clients), swaps)
}
