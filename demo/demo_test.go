package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/switchboard-dev/switchboard/internal/testutil"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestMain lets the tests run the demo command as a real process: the
// test binary re-executed with DEMO_TEST_ARGS runs `demo ARGS...`.
func TestMain(m *testing.M) {
	if args := os.Getenv("DEMO_TEST_ARGS"); args != "" {
		cmd := NewCommand()
		cmd.SetArgs(strings.Fields(args))
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	// In-process servers without a logger of their own stay quiet.
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// syncBuffer is testutil.SyncBuffer: tests read it while a writer writes.
type syncBuffer = testutil.SyncBuffer

// run starts a demo server in-process on 127.0.0.1:0 and returns its
// address; the server is stopped (and its result checked) at cleanup.
func run[C any](t *testing.T, serve func(context.Context, C) error, cfg func(onListen func(net.Addr)) C) (addr string, cancel context.CancelFunc, result chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	result = make(chan error, 1)
	go func() { result <- serve(ctx, cfg(func(a net.Addr) { listening <- a })) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-result:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	select {
	case a := <-listening:
		return a.String(), cancel, result
	case err := <-result:
		result <- err
		t.Fatalf("server ended before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not listen")
	}
	return "", cancel, result
}

func get(t *testing.T, method, url string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestHTTP(t *testing.T) {
	logs := &syncBuffer{}
	id := Identity{Pod: "web-1", Namespace: "shop", Node: "node1", PodIP: "127.0.0.1", Hostname: "h"}
	addr, cancel, result := run(t, RunHTTP, func(l func(net.Addr)) HTTPConfig {
		return HTTPConfig{Addr: "127.0.0.1:0", Identity: id, Logger: slog.New(slog.NewTextHandler(logs, nil)), OnListen: l}
	})
	base := "http://" + addr
	requests := 0

	t.Run("any path answers JSON with the pod and the request", func(t *testing.T) {
		code, body, hdr := get(t, "PUT", base+"/some/path?x=1&x=2", map[string]string{"X-Test": "yes"})
		requests++
		var e Echo
		if err := json.Unmarshal([]byte(body), &e); err != nil || code != 200 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %v %s", code, err, body)
		}
		if e.Identity != id || e.Method != "PUT" || e.Path != "/some/path" || strings.Join(e.Query["x"], ",") != "1,2" ||
			e.Headers["X-Test"][0] != "yes" || !strings.HasPrefix(e.RemoteAddr, "127.0.0.1:") || e.LocalAddr != addr || e.Time.IsZero() {
			t.Errorf("echo = %+v", e)
		}
	})

	t.Run("Accept: text/plain answers text", func(t *testing.T) {
		code, body, hdr := get(t, "GET", base+"/hello", map[string]string{"Accept": "text/plain"})
		requests++
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") ||
			!strings.Contains(body, "pod: web-1\n") || !strings.Contains(body, "path: /hello\n") || !strings.Contains(body, "namespace: shop\n") {
			t.Errorf("%d %s", code, body)
		}
	})

	checks := []struct {
		name, method, path string
		code               int
		body               string
	}{
		{"healthz starts ok", "GET", "/healthz", 200, "ok"},
		{"readyz starts ok", "GET", "/readyz", 200, "ok"},
		{"switch healthz to failing (any method)", "POST", "/control/healthz?fail=true", 200, "healthz: failing\n"},
		{"healthz fails with 503", "GET", "/healthz", 503, "failing"},
		{"readyz is independent", "GET", "/readyz", 200, "ok"},
		{"switch readyz to failing", "GET", "/control/readyz?fail=true", 200, "readyz: failing\n"},
		{"readyz fails with 503", "GET", "/readyz", 503, "failing"},
		{"switch healthz back", "PUT", "/control/healthz?fail=false", 200, "healthz: ok\n"},
		{"healthz ok again", "GET", "/healthz", 200, "ok"},
		{"switch readyz back", "GET", "/control/readyz?fail=false", 200, "readyz: ok\n"},
		{"readyz ok again", "HEAD", "/readyz", 200, ""},
		{"bad fail value is a 400", "GET", "/control/readyz?fail=maybe", 400, "want true or false\n"},
		{"bad exit code is a 400", "GET", "/control/exit?code=-3", 400, "want an integer from 0 to 255\n"},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := get(t, tc.method, base+tc.path, nil)
			requests++
			if code != tc.code || !strings.HasSuffix(body, tc.body) {
				t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, code, body, tc.code, tc.body)
			}
		})
	}

	cancel()
	if err := <-result; err != nil {
		t.Errorf("RunHTTP after cancel = %v, want nil", err)
	}
	result <- nil
	// One log line per request.
	if n := strings.Count(logs.String(), "msg=request"); n != requests {
		t.Errorf("%d request log lines for %d requests:\n%s", n, requests, logs.String())
	}
}

func TestHTTPStartDelay(t *testing.T) {
	const delay = 300 * time.Millisecond
	start := time.Now()
	addr, _, _ := run(t, RunHTTP, func(l func(net.Addr)) HTTPConfig {
		return HTTPConfig{Addr: "127.0.0.1:0", StartDelay: delay, OnListen: l}
	})
	if waited := time.Since(start); waited < delay {
		t.Errorf("listening after %v, before the start delay of %v", waited, delay)
	}
	if code, _, _ := get(t, "GET", "http://"+addr+"/healthz", nil); code != 200 {
		t.Errorf("healthz after the delay = %d", code)
	}

	// Stopped during the delay, it never listens and ends cleanly.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunHTTP(ctx, HTTPConfig{Addr: "127.0.0.1:0", StartDelay: time.Hour, OnListen: func(net.Addr) { t.Error("listened despite the stop") }})
	}()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("stop during the delay = %v", err)
	}
}

func TestHTTPFailHealthzAfter(t *testing.T) {
	const after = 200 * time.Millisecond
	start := time.Now()
	addr, _, _ := run(t, RunHTTP, func(l func(net.Addr)) HTTPConfig {
		return HTTPConfig{Addr: "127.0.0.1:0", FailHealthzAfter: after, OnListen: l}
	})
	for {
		code, _, _ := get(t, "GET", "http://"+addr+"/healthz", nil)
		if code == 503 {
			if e := time.Since(start); e < after {
				t.Errorf("healthz failed after %v, before %v", e, after)
			}
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("healthz never failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The control endpoint still switches it back.
	get(t, "GET", "http://"+addr+"/control/healthz?fail=false", nil)
	if code, _, _ := get(t, "GET", "http://"+addr+"/healthz", nil); code != 200 {
		t.Errorf("healthz after switching back = %d", code)
	}
}

func TestHTTPExit(t *testing.T) {
	t.Run("/control/exit answers, then the server exits with the code", func(t *testing.T) {
		addr, _, result := run(t, RunHTTP, func(l func(net.Addr)) HTTPConfig {
			return HTTPConfig{Addr: "127.0.0.1:0", OnListen: l}
		})
		code, body, _ := get(t, "POST", "http://"+addr+"/control/exit?code=3", nil)
		if code != 200 || body != "exiting with code 3\n" {
			t.Errorf("%d %q", code, body)
		}
		err := <-result
		result <- err
		var ec *ExitCode
		if !errors.As(err, &ec) || ec.Code != 3 {
			t.Errorf("RunHTTP = %v, want exit code 3", err)
		}
	})
	t.Run("--exit-after", func(t *testing.T) {
		_, _, result := run(t, RunHTTP, func(l func(net.Addr)) HTTPConfig {
			return HTTPConfig{Addr: "127.0.0.1:0", ExitAfter: 100 * time.Millisecond, ExitCode: 4, OnListen: l}
		})
		err := <-result
		result <- err
		var ec *ExitCode
		if !errors.As(err, &ec) || ec.Code != 4 {
			t.Errorf("RunHTTP = %v, want exit code 4", err)
		}
	})
}

func healthClient(t *testing.T, addr string) healthpb.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func TestGRPC(t *testing.T) {
	toggle := make(chan struct{})
	addr, _, _ := run(t, RunGRPC, func(l func(net.Addr)) GRPCConfig {
		return GRPCConfig{Addr: "127.0.0.1:0", Services: []string{"shop.Cart", "shop.Pay"}, Toggle: toggle, OnListen: l}
	})
	hc := healthClient(t, addr)
	ctx := context.Background()
	checkAll := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, svc := range []string{"", "shop.Cart", "shop.Pay"} {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil || resp.GetStatus() != want {
				t.Errorf("Check(%q) = %v %v, want %v", svc, resp.GetStatus(), err, want)
			}
		}
	}
	checkAll(healthpb.HealthCheckResponse_SERVING)
	// grpc.health.v1: "If the requested service is unknown, the call will
	// fail with status NOT_FOUND."
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check(unknown) = %v, want NotFound", err)
	}

	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	ws, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{Service: "shop.Cart"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ws.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first watch answer %v %v", r, err)
	}
	toggle <- struct{}{}
	if r, err := ws.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch after toggle %v %v", r, err)
	}
	checkAll(healthpb.HealthCheckResponse_NOT_SERVING)
	toggle <- struct{}{}
	if r, err := ws.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch after second toggle %v %v", r, err)
	}
	checkAll(healthpb.HealthCheckResponse_SERVING)

	t.Run("--not-serving", func(t *testing.T) {
		addr, _, _ := run(t, RunGRPC, func(l func(net.Addr)) GRPCConfig {
			return GRPCConfig{Addr: "127.0.0.1:0", NotServing: true, OnListen: l}
		})
		resp, err := healthClient(t, addr).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check = %v %v", resp, err)
		}
	})
}

func TestTCPEcho(t *testing.T) {
	addr, cancel, result := run(t, RunTCPEcho, func(l func(net.Addr)) EchoConfig {
		return EchoConfig{Addr: "127.0.0.1:0", OnListen: l}
	})
	var conns []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		msg := fmt.Sprintf("hello %d\n", i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != msg {
			t.Errorf("echo %q %v, want %q", got, err, msg)
		}
	}
	// Half-close: the server echoes what is left and closes its side.
	if err := conns[0].(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(conns[0]); err != nil || len(rest) != 0 {
		t.Errorf("after half-close: %q %v", rest, err)
	}
	// Stopping closes the open connections and returns nil.
	cancel()
	if err := <-result; err != nil {
		t.Errorf("RunTCPEcho = %v", err)
	}
	result <- nil
	if _, err := io.ReadAll(conns[1]); err != nil {
		t.Errorf("open connection after stop: %v, want EOF", err)
	}
}

func TestUDPEcho(t *testing.T) {
	addr, _, _ := run(t, RunUDPEcho, func(l func(net.Addr)) EchoConfig {
		return EchoConfig{Addr: "127.0.0.1:0", OnListen: l}
	})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for _, msg := range []string{"one", strings.Repeat("x", 1400), "three"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Errorf("echo %d bytes %v, want %d", n, err, len(msg))
		}
	}
}

func TestIdentityAndHost(t *testing.T) {
	host, _ := os.Hostname()
	cases := []struct {
		name     string
		env      map[string]string
		wantID   Identity
		wantHost string
	}{
		{"nothing set: hostname and 127.0.0.1", nil, Identity{Pod: host, Hostname: host}, "127.0.0.1"},
		{"the node's SWITCHBOARD_ variables", map[string]string{
			"SWITCHBOARD_POD_NAME": "web-1", "SWITCHBOARD_POD_NAMESPACE": "shop", "SWITCHBOARD_NODE_NAME": "n1", "SWITCHBOARD_POD_IP": "127.1.0.7",
		}, Identity{Pod: "web-1", Namespace: "shop", Node: "n1", PodIP: "127.1.0.7", Hostname: host}, "127.1.0.7"},
		{"downward-API names win", map[string]string{
			"POD_NAME": "a", "SWITCHBOARD_POD_NAME": "b", "POD_NAMESPACE": "x", "POD_IP": "127.1.0.8", "SWITCHBOARD_POD_IP": "127.1.0.9",
		}, Identity{Pod: "a", Namespace: "x", PodIP: "127.1.0.8", Hostname: host}, "127.1.0.8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"POD_NAME", "POD_NAMESPACE", "NODE_NAME", "POD_IP", "SWITCHBOARD_POD_NAME", "SWITCHBOARD_POD_NAMESPACE", "SWITCHBOARD_NODE_NAME", "SWITCHBOARD_POD_IP"} {
				t.Setenv(k, tc.env[k])
			}
			if got := IdentityFromEnv(); got != tc.wantID {
				t.Errorf("IdentityFromEnv = %+v, want %+v", got, tc.wantID)
			}
			if got := DefaultHost(); got != tc.wantHost {
				t.Errorf("DefaultHost = %q, want %q", got, tc.wantHost)
			}
		})
	}
}

func TestCommandFlags(t *testing.T) {
	for _, args := range [][]string{
		{"http", "--port", "70000"},
		{"tcp-echo", "--port", "-1"},
		{"udp-echo", "extra-arg"},
		{"grpc", "--no-such-flag"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := NewCommand()
			cmd.SetArgs(args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			if err := cmd.Execute(); err == nil {
				t.Error("bad arguments accepted")
			}
		})
	}
}

var addrRE = regexp.MustCompile(`listening"? addr=(\S+)`)

// process runs `demo ARGS` as a real process (the test binary) with env.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	addr string
	done chan struct{}
}

func startProcess(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(append(os.Environ(), "DEMO_TEST_ARGS="+strings.Join(args, " ")), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	t.Cleanup(func() {
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := addrRE.FindStringSubmatch(p.out.String()); m != nil {
			p.addr = m[1]
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("process ended before listening:\n%s", p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("process did not listen:\n%s", p.out.String())
	return nil
}

func (p *process) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatalf("process did not exit:\n%s", p.out.String())
		return -1
	}
}

func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	podEnv := []string{"SWITCHBOARD_POD_NAME=web-7", "SWITCHBOARD_POD_NAMESPACE=shop", "SWITCHBOARD_POD_IP=127.0.0.77", "SWITCHBOARD_NODE_NAME=n1"}

	t.Run("http binds the pod IP, answers as the pod, exits 0 on SIGTERM", func(t *testing.T) {
		p := startProcess(t, podEnv, "http", "--port", "0")
		if !strings.HasPrefix(p.addr, "127.0.0.77:") {
			t.Errorf("bound %s, want the pod IP from SWITCHBOARD_POD_IP", p.addr)
		}
		_, body, _ := get(t, "GET", "http://"+p.addr+"/x", nil)
		var e Echo
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Pod != "web-7" || e.Namespace != "shop" || e.Node != "n1" || e.PodIP != "127.0.0.77" {
			t.Errorf("echo = %+v %v", e, err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := p.exitCode(t); code != 0 {
			t.Errorf("exit code after SIGTERM = %d, want 0\n%s", code, p.out.String())
		}
		if !strings.Contains(p.out.String(), "msg=request") || !strings.Contains(p.out.String(), "shutting down") {
			t.Errorf("stdout lacks the request and shutdown lines:\n%s", p.out.String())
		}
	})

	t.Run("/control/exit?code=7 exits the process with 7", func(t *testing.T) {
		p := startProcess(t, podEnv, "http", "--host", "127.0.0.1", "--port", "0")
		if code, body, _ := get(t, "GET", "http://"+p.addr+"/control/exit?code=7", nil); code != 200 || body != "exiting with code 7\n" {
			t.Errorf("%d %q", code, body)
		}
		if code := p.exitCode(t); code != 7 {
			t.Errorf("exit code = %d, want 7", code)
		}
	})

	t.Run("grpc: SIGUSR1 toggles, SIGINT stops cleanly", func(t *testing.T) {
		p := startProcess(t, nil, "grpc", "--host", "127.0.0.1", "--port", "0", "--service", "a", "--service", "b")
		hc := healthClient(t, p.addr)
		ctx := context.Background()
		if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "b"}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(b) = %v %v", r, err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "a"})
			if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("SIGUSR1 did not toggle: %v %v", r, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := p.exitCode(t); code != 0 {
			t.Errorf("exit code after SIGINT = %d\n%s", code, p.out.String())
		}
	})

	t.Run("tcp-echo and udp-echo stop cleanly on SIGTERM", func(t *testing.T) {
		for _, kind := range []string{"tcp-echo", "udp-echo"} {
			p := startProcess(t, nil, kind, "--host", "127.0.0.1", "--port", "0")
			network := strings.TrimSuffix(kind, "-echo")
			c, err := net.Dial(network, p.addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("ping\n")); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 16)
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ping\n" {
				t.Errorf("%s echo %q %v", kind, buf[:n], err)
			}
			c.Close()
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.exitCode(t); code != 0 {
				t.Errorf("%s exit code = %d\n%s", kind, code, p.out.String())
			}
		}
	})
}
