package upstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLeastRequestPick: the endpoint with the fewest requests in flight
// is taken ("LEAST_REQUEST ... picks the host which has the fewest active
// requests", Envoy; nginx least_conn: "a request is passed to the server
// with the least number of active connections ... If there are several
// such servers, they are tried in turn"), never one already tried, an
// ejected one only when nothing else is left.
func TestLeastRequestPick(t *testing.T) {
	cases := []struct {
		name     string
		inFlight map[string]int
		ejected  []string
		tried    []string
		want     []string // acceptable picks
	}{
		{name: "fewest in flight", inFlight: map[string]int{"a": 3, "b": 1, "c": 2}, want: []string{"b"}},
		{name: "ties: any of the least busy", inFlight: map[string]int{"a": 2, "b": 0, "c": 0}, want: []string{"b", "c"}},
		{name: "tried endpoints are skipped", inFlight: map[string]int{"a": 3, "b": 1, "c": 2}, tried: []string{"b"}, want: []string{"c"}},
		{name: "ejected endpoints are skipped", inFlight: map[string]int{"a": 3, "b": 1, "c": 2}, ejected: []string{"b"}, want: []string{"c"}},
		{name: "all ejected: the least busy of them", inFlight: map[string]int{"a": 3, "b": 1, "c": 2}, ejected: []string{"a", "b", "c"}, want: []string{"b"}},
		{name: "everything tried: none", inFlight: map[string]int{"a": 0, "b": 0, "c": 0}, tried: []string{"a", "b", "c"}, want: nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPool("ns/svc:80")
			p.SetEndpoints([]string{"a", "b", "c"})
			var held []*Endpoint
			for a, n := range c.inFlight {
				for i := 0; i < n; i++ {
					held = append(held, p.AcquireAddr(a))
				}
			}
			for _, a := range c.ejected {
				p.Eject(a, time.Minute)
			}
			for i := 0; i < 6; i++ {
				e := p.Acquire(c.tried, LeastRequest)
				if c.want == nil {
					if e != nil {
						t.Fatalf("picked %s, want none", e.Addr)
					}
					continue
				}
				if e == nil || !contains(c.want, e.Addr) {
					t.Fatalf("picked %v, want one of %v", e, c.want)
				}
				e.Done()
			}
			for _, e := range held {
				e.Done()
			}
			for _, a := range []string{"a", "b", "c"} {
				if n := p.InFlight(a); n != 0 {
					t.Errorf("%s: %d in flight after every Done", a, n)
				}
			}
		})
	}

	// Ties are taken in turn: with nothing in flight every endpoint gets
	// its share.
	p := NewPool("ns/svc:80")
	p.SetEndpoints([]string{"a", "b", "c"})
	count := map[string]int{}
	for i := 0; i < 30; i++ {
		e := p.Acquire(nil, LeastRequest)
		count[e.Addr]++
		e.Done()
	}
	if count["a"] != 10 || count["b"] != 10 || count["c"] != 10 {
		t.Errorf("idle pool: picks %v, want 10 each", count)
	}
}

// TestLeastRequestLargePool: above LeastRequestScan endpoints two are
// drawn and the less busy one is taken (the power of two choices): a
// busy endpoint is taken far less often than an idle one.
func TestLeastRequestLargePool(t *testing.T) {
	p := NewPool("ns/svc:80")
	var eps []string
	for i := 0; i < 4*LeastRequestScan; i++ {
		eps = append(eps, fmt.Sprintf("10.0.0.%d:80", i))
	}
	p.SetEndpoints(eps)
	busy := eps[:len(eps)/2]
	for _, a := range busy {
		for i := 0; i < 5; i++ {
			p.AcquireAddr(a)
		}
	}
	picks := map[bool]int{}
	for i := 0; i < 2000; i++ {
		e := p.Acquire(nil, LeastRequest)
		picks[contains(busy, e.Addr)]++
		e.Done()
	}
	// Drawing two of which half are busy, a busy one wins only when both
	// are busy: about a quarter (round-robin would give a half).
	if picks[true] >= picks[false]/2 {
		t.Errorf("busy endpoints picked %d times, idle %d: want the idle ones far more often", picks[true], picks[false])
	}
	// SetEndpoints keeps an endpoint's requests in flight.
	p.SetEndpoints(eps[:3])
	if n := p.InFlight(eps[0]); n != 5 {
		t.Errorf("in flight after SetEndpoints: %d, want 5", n)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestBalanceRealBackends: one slow and one fast backend under
// concurrent requests, through the Transport (net/http path: RoundTrip)
// and the fast path's DirectSend: least_request sends most requests to
// the fast one, round_robin splits them evenly, and every endpoint's
// in-flight count is back to 0 afterwards.
func TestBalanceRealBackends(t *testing.T) {
	handler := func(d time.Duration) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(d)
			io.WriteString(w, "ok")
		})
	}
	slow := httptest.NewServer(handler(60 * time.Millisecond))
	t.Cleanup(slow.Close)
	fast := httptest.NewServer(handler(0))
	t.Cleanup(fast.Close)
	slowAddr, fastAddr := strings.TrimPrefix(slow.URL, "http://"), strings.TrimPrefix(fast.URL, "http://")

	viaRoundTrip := func(tr *Transport, p *Pool, b Balance) (string, error) {
		rec := &Record{Balance: b}
		req, _ := http.NewRequestWithContext(WithRecord(WithPool(context.Background(), p), rec), "GET", "http://upstream/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return "", err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return rec.Addr, nil
	}
	viaDirect := func(tr *Transport, p *Pool, b Balance) (string, error) {
		rec := &Record{Balance: b}
		dc, err := tr.DirectSend(p, rec, func(w *bufio.Writer) { w.WriteString("GET / HTTP/1.1\r\nHost: x\r\n\r\n") }, nil)
		if err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(dc.Reader(), nil)
		if err != nil {
			dc.Release(false)
			return "", err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		dc.Release(err == nil)
		return rec.Addr, err
	}
	for _, path := range []struct {
		name string
		send func(*Transport, *Pool, Balance) (string, error)
	}{{"RoundTrip", viaRoundTrip}, {"DirectSend", viaDirect}} {
		for _, b := range []Balance{RoundRobin, LeastRequest} {
			t.Run(path.name+"/"+b.String(), func(t *testing.T) {
				tr := NewTransport(Options{})
				t.Cleanup(tr.CloseIdleConnections)
				p := NewPool("ns/svc:80")
				p.SetEndpoints([]string{slowAddr, fastAddr})
				const workers, each = 8, 12
				var mu sync.Mutex
				count := map[string]int{}
				var wg sync.WaitGroup
				errs := make(chan error, workers)
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < each; i++ {
							addr, err := path.send(tr, p, b)
							if err != nil {
								errs <- err
								return
							}
							mu.Lock()
							count[addr]++
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				total := count[slowAddr] + count[fastAddr]
				if total != workers*each {
					t.Fatalf("%d answers, want %d", total, workers*each)
				}
				switch b {
				case RoundRobin:
					// In turn: each endpoint gets half, give or take the
					// interleaving of concurrent picks.
					if d := count[slowAddr] - count[fastAddr]; d < -total/8 || d > total/8 {
						t.Errorf("round_robin: slow %d, fast %d; want about even", count[slowAddr], count[fastAddr])
					}
				case LeastRequest:
					// The slow endpoint holds its requests 60ms; the fast
					// one answers at once and keeps being the least busy.
					if count[fastAddr] < 3*count[slowAddr] {
						t.Errorf("least_request: slow %d, fast %d; want most on the fast one", count[slowAddr], count[fastAddr])
					}
				}
				for _, a := range []string{slowAddr, fastAddr} {
					if n := p.InFlight(a); n != 0 {
						t.Errorf("%s: %d requests in flight after all answered", a, n)
					}
				}
			})
		}
	}
}

// TestInFlightOnFailures: a failed connect, a body closed before its end
// and an upgrade's connection each end their request in flight.
func TestInFlightOnFailures(t *testing.T) {
	dead := refusingAddr(t)
	live, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readReq(br)
			if err != nil {
				return
			}
			if r.Header.Get("Upgrade") != "" {
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
				io.Copy(c, br) // echo
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
		}
	})
	tr := NewTransport(Options{})
	t.Cleanup(tr.CloseIdleConnections)
	p := NewPool("ns/svc:80")
	p.SetEndpoints([]string{dead, live})
	p.next.Store(0)

	// A connect failure: the dead endpoint's request ends, the retry is
	// on the live one; the body closed after one byte.
	req, _ := http.NewRequestWithContext(WithPool(context.Background(), p), "GET", "http://upstream/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if p.InFlight(dead) != 0 || p.InFlight(live) != 1 {
		t.Errorf("response open: dead %d, live %d in flight; want 0, 1", p.InFlight(dead), p.InFlight(live))
	}
	resp.Body.Read(make([]byte, 1))
	resp.Body.Close()
	if p.InFlight(live) != 0 {
		t.Errorf("body closed early: %d in flight", p.InFlight(live))
	}

	// An upgrade: in flight while the connection is open; the body is
	// still an io.ReadWriteCloser (httputil.ReverseProxy needs it).
	req, _ = http.NewRequestWithContext(WithPool(context.Background(), p), "GET", "http://upstream/", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "test")
	resp, err = tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != http.StatusSwitchingProtocols || !ok {
		t.Fatalf("upgrade: %d, body %T", resp.StatusCode, resp.Body)
	}
	io.WriteString(rwc, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	if p.InFlight(live) != 1 {
		t.Errorf("upgraded connection open: %d in flight, want 1", p.InFlight(live))
	}
	rwc.Close()
	if p.InFlight(live) != 0 {
		t.Errorf("upgraded connection closed: %d in flight", p.InFlight(live))
	}
}
