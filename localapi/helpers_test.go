package localapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/switchboard-dev/switchboard/internal/testutil"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/node"
)

func TestMain(m *testing.M) {
	// Quick bookmarks and log header commits keep the tests short; the
	// tests that look at them wait for them, not for a fixed time.
	bookmarkInterval = 100 * time.Millisecond
	followCommitDelay = 200 * time.Millisecond
	os.Exit(m.Run())
}

// testServer is the handler served for real on a unix socket and on
// 127.0.0.1:0, as `switchboard up` serves it.
type testServer struct {
	store    *cluster.Store
	sock     string
	tcpURL   string
	unix     *http.Client // talks to the unix socket; URLs use host "localhost"
	reg      *prometheus.Registry
	logs     *syncBuffer
	cancel   context.CancelFunc
	stopped  chan error
	tcpStops chan error
}

// syncBuffer is testutil.SyncBuffer: tests read it while a writer writes.
type syncBuffer = testutil.SyncBuffer

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	ts := &testServer{store: cluster.NewStore(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	for _, ns := range []string{"default", "kube-system"} {
		if _, err := ts.store.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	if opts.Registerer == nil {
		opts.Registerer = ts.reg
	}
	if opts.Gatherer == nil {
		opts.Gatherer = ts.reg
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h := New(ts.store, opts)

	ts.sock = filepath.Join(t.TempDir(), "api.sock")
	uln, err := ListenUnix(ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		uln.Close()
		t.Fatal(err)
	}
	ts.tcpURL = "http://" + tln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	ts.cancel = cancel
	ts.stopped, ts.tcpStops = make(chan error, 1), make(chan error, 1)
	go func() { ts.stopped <- Serve(ctx, uln, h) }()
	go func() { ts.tcpStops <- Serve(ctx, tln, h) }()
	t.Cleanup(func() {
		cancel()
		for _, c := range []chan error{ts.stopped, ts.tcpStops} {
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				t.Error("server did not stop")
			}
		}
	})
	ts.unix = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", ts.sock)
		},
	}}
	t.Cleanup(ts.unix.CloseIdleConnections)
	return ts
}

// restConfig is a client-go config reaching the server over its unix socket.
func (ts *testServer) restConfig() *rest.Config {
	return &rest.Config{
		Host: "http://localhost",
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", ts.sock)
		},
		QPS:   1000,
		Burst: 1000,
	}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) status(t *testing.T) metav1.Status {
	t.Helper()
	var st metav1.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("body is not a Status: %v: %s", err, r.body)
	}
	return st
}

func (r response) into(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %T: %v: %s", v, err, r.body)
	}
}

// do sends a request over the unix socket.
func (ts *testServer) do(t *testing.T, method, path, contentType string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, "http://localhost"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.unix.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// watchStream reads watch events from a streaming response.
type watchStream struct {
	resp   *http.Response
	events chan wireEventIn
	cancel context.CancelFunc
}

type wireEventIn struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

func (ev wireEventIn) meta(t *testing.T) metav1.ObjectMeta {
	t.Helper()
	var o struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(ev.Object, &o); err != nil {
		t.Fatal(err)
	}
	return o.Metadata
}

func (ts *testServer) watch(t *testing.T, path string) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.unix.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ws := &watchStream{resp: resp, events: make(chan wireEventIn, 1000), cancel: cancel}
	t.Cleanup(ws.stop)
	go func() {
		defer close(ws.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev wireEventIn
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = wireEventIn{Type: "UNDECODABLE", Object: json.RawMessage(`"` + err.Error() + `"`)}
			}
			ws.events <- ev
		}
	}()
	return ws
}

func (ws *watchStream) stop() {
	ws.cancel()
	ws.resp.Body.Close()
}

// next returns the next event that is not a periodic bookmark (one
// without the initial-events-end annotation), failing after a generous
// wait; ok is false when the stream ended.
func (ws *watchStream) next(t *testing.T) (wireEventIn, bool) {
	t.Helper()
	for {
		select {
		case ev, ok := <-ws.events:
			if !ok {
				return ev, false
			}
			if ev.Type == "BOOKMARK" && ev.meta(t).Annotations[metav1.InitialEventsAnnotationKey] == "" {
				continue
			}
			return ev, true
		case <-time.After(10 * time.Second):
			t.Fatal("no watch event within 10s")
			return wireEventIn{}, false
		}
	}
}

// fakeLogs is a LogStreamer over fixed lines; followed streams get more
// lines from more.
type fakeLogs struct {
	lines map[string][]string // "ns/pod/container" -> lines
	more  chan string
}

func (f *fakeLogs) StreamLogs(ctx context.Context, namespace, pod string, opts node.LogOptions, w io.Writer) error {
	switch opts.Container {
	case "panic":
		panic("the fake log streamer panics, as a bug would")
	case "":
		opts.Container = "main"
	}
	lines, ok := f.lines[namespace+"/"+pod+"/"+opts.Container]
	if !ok {
		return apierrors.NewBadRequest("container " + opts.Container + " is not valid for pod " + pod)
	}
	if opts.TailLines != nil && int(*opts.TailLines) < len(lines) {
		lines = lines[len(lines)-int(*opts.TailLines):]
	}
	for _, l := range lines {
		if opts.Timestamps {
			l = "2024-01-01T00:00:00Z " + l
		}
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	for {
		select {
		case l, ok := <-f.more:
			if !ok {
				return nil
			}
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var errTimeout = errors.New("timed out")

// eventually polls cond every 20ms for up to 10s.
func eventually(cond func() bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errTimeout
}

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "switchboard", Command: []string{"switchboard", "demo", "http"}}}},
	}
}
