package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// testPod is the pod the tests probe.
func testPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: "uid-1"}}
}

// startHTTP serves h on 127.0.0.1:0 (or HTTPS with a self-signed
// certificate) until the test ends; it returns the host and port.
func startHTTP(t testing.TB, h http.Handler, tlsOn bool) (string, int) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	t.Cleanup(srv.Close)
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return splitHostPort(t, srv.Listener.Addr().String())
}

func splitHostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// closedPort returns a port on 127.0.0.1 where nothing listens.
func closedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port := splitHostPort(t, l.Addr().String())
	_ = l.Close()
	return port
}

// fullBacklogPort returns a port on 127.0.0.1 whose listener never accepts
// and whose accept queue is full, so a new connection attempt is not
// answered and times out.
func fullBacklogPort(t testing.TB) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return port // queue full: this one was not answered
		}
		t.Cleanup(func() { _ = c.Close() })
		if i > 64 {
			t.Skip("cannot fill the accept queue of a loopback listener on this kernel")
		}
	}
}

// shExec is a Target.Exec running real commands with exec.CommandContext
// in their own process group, killed as a group when ctx ends.
func shExec(ctx context.Context, cmd []string) ([]byte, int, error) {
	c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = time.Second
	out, err := c.CombinedOutput()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return out, exitErr.ExitCode(), nil
	}
	if err != nil {
		return out, -1, err
	}
	return out, 0, nil
}

func httpGetProbe(path string, port intstr.IntOrString) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}},
		TimeoutSeconds:   1,
		PeriodSeconds:    1,
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
}

// event is one call to a Recorder.
type event struct {
	obj                    cluster.Object
	eventType, reason, msg string
}

// fakeRecorder collects Eventf calls.
type fakeRecorder struct {
	mu     sync.Mutex
	events []event
}

func (r *fakeRecorder) Eventf(obj cluster.Object, eventType, reason, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{obj, eventType, reason, sprintf(format, args...)})
}

func (r *fakeRecorder) list() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// startHTTPConnCount is startHTTP counting new connections in n.
func startHTTPConnCount(t testing.TB, h http.Handler, n *atomic.Int32) (string, int) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	t.Cleanup(srv.Close)
	srv.Start()
	return splitHostPort(t, srv.Listener.Addr().String())
}
