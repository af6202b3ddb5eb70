package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the switchboard child of Run.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childMain(dir))
	}
	os.Exit(m.Run())
}

// TestQuick runs the benchmark briefly and checks that the table holds
// every row, that both proxies answered without errors, and that nginx
// and the child are gone afterwards (no figure is asserted: speed is not
// a test).
func TestQuick(t *testing.T) {
	if m := Missing(); m != "" {
		t.Skip(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := Quick
	o.Duration, o.Warmup = time.Second, 0
	var out strings.Builder
	if err := Run(ctx, o, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	for _, sc := range []string{"HTTP/1.1", "HTTPS (TLS, HTTP/1.1)"} {
		for _, p := range []string{"switchboard", "nginx", "switchboard/nginx"} {
			found := false
			for _, l := range strings.Split(out.String(), "\n") {
				f := strings.Fields(strings.TrimPrefix(l, sc))
				if strings.HasPrefix(l, sc+" ") && len(f) > 0 && f[0] == p {
					found = true
					if p != "switchboard/nginx" && f[len(f)-1] != "0" {
						t.Errorf("%s via %s: errors: %s", sc, p, l)
					}
				}
			}
			if !found {
				t.Errorf("table lacks the row %s / %s", sc, p)
			}
		}
	}
}

func TestParseWrk(t *testing.T) {
	// wrk 4.1.0 --latency output.
	const report = `Running 2s test @ http://127.0.0.1:40000/
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms    2.00ms  40.00ms   95.00%
    Req/Sec     6.00k   500.00     7.00k    70.00%
  Latency Distribution
     50%  635.00us
     75%    1.00ms
     90%    2.00ms
     99%   12.50ms
  24000 requests in 2.00s, 3.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  11999.50
Transfer/sec:      1.50MB
`
	r, err := parseWrk(report)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Requests: 11999.50, Total: 24000, P50: 635 * time.Microsecond, P99: 12500 * time.Microsecond, Non2xx: 7, SocketErr: 3}
	if r != want {
		t.Errorf("parseWrk = %+v, want %+v", r, want)
	}
	if _, err := parseWrk("wrk: connection refused"); err == nil {
		t.Error("a report without figures parsed")
	}
}

// TestMedian: each figure is the median of the rounds' (the mean of the
// middle two for an even count); errors add up.
func TestMedian(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name string
		in   []Result
		want Result
	}{
		{"none", nil, Result{}},
		{"one", []Result{{Requests: 10, P99: ms, SocketErr: 1}}, Result{Requests: 10, P99: ms, SocketErr: 1}},
		{"odd: the middle of each figure on its own",
			[]Result{{Requests: 30, P99: 1 * ms, Non2xx: 1}, {Requests: 10, P99: 9 * ms}, {Requests: 20, P99: 5 * ms, Non2xx: 2}},
			Result{Requests: 20, P99: 5 * ms, Non2xx: 3}},
		{"even: the mean of the middle two", []Result{{Requests: 10, P50: 2 * ms}, {Requests: 40, P50: 4 * ms}, {Requests: 20, P50: 1 * ms}, {Requests: 30, P50: 3 * ms}},
			Result{Requests: 25, P50: 2500 * time.Microsecond}},
	}
	for _, c := range cases {
		if got := median(c.in); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
