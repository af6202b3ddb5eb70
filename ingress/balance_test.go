package ingress

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
)

// startDelayedBackend is an echo backend named name that answers after d.
func startDelayedBackend(t *testing.T, name string, d time.Duration) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echo{Backend: name, Method: r.Method, Path: r.URL.Path})
	}), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	go srv.Serve(ln)
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// spread sends workers x each requests concurrently (kept-alive
// connections) and counts the answers by backend.
func spread(t *testing.T, method, addr, host string, workers, each int) map[string]int {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: workers}}
	t.Cleanup(client.CloseIdleConnections)
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("x")
				}
				req, _ := http.NewRequest(method, "http://"+addr+"/", body)
				req.Host = host
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				var e echo
				err = json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					errs <- err
					return
				}
				mu.Lock()
				count[e.Backend]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%s %s: %v", method, host, err)
	}
	return count
}

// TestLoadBalance: one slow endpoint (50ms) and one fast one behind one
// Service, under concurrent requests. switchboard.dev/load-balance:
// least_request ("LEAST_REQUEST ... picks the host which has the fewest
// active requests", Envoy; nginx least_conn) sends most requests to the
// fast endpoint; round_robin (the default) splits them evenly; both on
// the fast path (GET) and on the net/http path (POST), and every
// endpoint's requests in flight are back to 0 afterwards. Config.LoadBalance
// is the default of Ingresses without the annotation; a bad value of
// either is refused.
func TestLoadBalance(t *testing.T) {
	for _, def := range []annotations.LoadBalance{"", annotations.LeastRequest} {
		t.Run("default "+string(def), func(t *testing.T) {
			s := newStore(t)
			e := startController(t, s, func(c *Config) { c.LoadBalance = def })
			e.create(classObj("switchboard", true))
			e.create(serviceObj("shop", "pair"),
				sliceObj("shop", "pair", "pair-slow", startDelayedBackend(t, "slow", 50*time.Millisecond), "127.0.0.1"),
				sliceObj("shop", "pair", "pair-fast", startDelayedBackend(t, "fast", 0), "127.0.0.1"))
			e.create(
				ingressObj("shop", "plain", "plain.test", pathRule("Prefix", "/", "pair", 80)),
				annotated(ingressObj("shop", "rr", "rr.test", pathRule("Prefix", "/", "pair", 80)), annotations.LoadBalanceName, "round_robin"),
				annotated(ingressObj("shop", "lr", "lr.test", pathRule("Prefix", "/", "pair", 80)), annotations.LoadBalanceName, "least_request"),
				annotated(ingressObj("shop", "bad", "bad.test", pathRule("Prefix", "/", "pair", 80)), annotations.LoadBalanceName, "random"),
			)
			e.settle()

			want := map[string]annotations.LoadBalance{"rr.test": annotations.RoundRobin, "lr.test": annotations.LeastRequest, "plain.test": annotations.RoundRobin}
			if def != "" {
				want["plain.test"] = def
			}
			hosts := []string{"plain.test", "rr.test", "lr.test"}
			if def != "" {
				hosts = []string{"plain.test", "rr.test"} // the default, and an annotation over it
			}
			for _, host := range hosts {
				for _, method := range []string{http.MethodGet, http.MethodPost} {
					fastBefore := e.c.fastHTTP.served.Load()
					const workers, each = 8, 8
					count := spread(t, method, e.http, host, workers, each)
					viaFast := e.c.fastHTTP.served.Load() - fastBefore
					if method == http.MethodGet && viaFast != workers*each {
						t.Errorf("%s GET: %d of %d requests on the fast path (load-balance must not force the net/http path)", host, viaFast, workers*each)
					}
					if method == http.MethodPost && viaFast != 0 {
						t.Errorf("%s POST: %d requests on the fast path, want the net/http path", host, viaFast)
					}
					slow, fast := count["slow"], count["fast"]
					if slow+fast != workers*each {
						t.Fatalf("%s %s: answers %v", host, method, count)
					}
					switch want[host] {
					case annotations.RoundRobin:
						// In turn: half each, give or take the interleaving
						// of concurrent picks.
						if d := slow - fast; d < -(slow+fast)/8 || d > (slow+fast)/8 {
							t.Errorf("%s %s (round_robin): slow %d, fast %d; want about even", host, method, slow, fast)
						}
					case annotations.LeastRequest:
						if fast < 3*slow {
							t.Errorf("%s %s (least_request): slow %d, fast %d; want most on the fast endpoint", host, method, slow, fast)
						}
					}
				}
			}
			pool := e.c.snap.Load().pools["shop/pair:80"]
			if pool == nil {
				t.Fatalf("no pool shop/pair:80: %v", e.c.snap.Load().pools)
			}
			for _, addr := range pool.Endpoints() {
				if n := pool.InFlight(addr); n != 0 {
					t.Errorf("%s: %d requests in flight after every answer", addr, n)
				}
			}

			// A bad value refuses the Ingress, as every annotation.
			if code := (curl(t, "--resolve", resolve("bad.test", e.http), url("http", "bad.test", e.http, "/"))).code; code != 404 {
				t.Errorf("load-balance: random: %d, want 404 (not served)", code)
			}
			ing, err := cluster.Get[*networkingv1.Ingress](s, "shop", "bad")
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ev := range cluster.EventsFor(s, ing) {
				if ev.Type == corev1.EventTypeWarning && ev.Reason == "InvalidAnnotation" &&
					strings.Contains(ev.Message, `metadata.annotations[switchboard.dev/load-balance]: Unsupported value: "random"`) {
					found = true
				}
			}
			if !found {
				t.Errorf("no InvalidAnnotation Event for load-balance: random: %v", cluster.EventsFor(s, ing))
			}
		})
	}
	if _, err := New(Config{Store: newStore(t), HTTPAddr: "127.0.0.1:0", LoadBalance: "fastest"}); err == nil || !strings.Contains(err.Error(), "round_robin, least_request") {
		t.Errorf("Config.LoadBalance fastest: %v, want an error naming the values", err)
	}
}
