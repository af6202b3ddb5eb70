package localapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

func setLabel(t *testing.T, s *cluster.Store, ns, name, k, v string) {
	t.Helper()
	if _, err := s.UpdateFunc(cluster.KindPod, ns, name, func(o cluster.Object) error {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		if v == "" {
			delete(l, k)
		} else {
			l[k] = v
		}
		o.SetLabels(l)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// expect reads events and compares "TYPE name" pairs.
func expect(t *testing.T, ws *watchStream, want ...string) {
	t.Helper()
	for _, w := range want {
		ev, ok := ws.next(t)
		if !ok {
			t.Fatalf("stream ended, want %s", w)
		}
		got := ev.Type + " " + ev.meta(t).Name
		if ev.Type == "ERROR" {
			got += " " + string(ev.Object)
		}
		if got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
}

func TestWatch(t *testing.T) {
	ts := newTestServer(t, Options{})
	s := ts.store
	if _, err := s.Create(pod("default", "a", map[string]string{"app": "web"})); err != nil {
		t.Fatal(err)
	}
	rvAfterA := s.ResourceVersion()
	if _, err := s.Create(pod("default", "b", map[string]string{"app": "web"})); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(pod("kube-system", "c", nil)); err != nil {
		t.Fatal(err)
	}

	t.Run("without resourceVersion: the current state as ADDED, then live changes", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/namespaces/default/pods?watch=true")
		if ct := ws.resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		expect(t, ws, "ADDED a", "ADDED b")
		setLabel(t, s, "default", "a", "x", "1")
		setLabel(t, s, "kube-system", "c", "x", "1") // another namespace: not seen
		if err := s.Delete(cluster.KindPod, "default", "b", cluster.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		expect(t, ws, "MODIFIED a", "DELETED b")
	})

	t.Run("from a resourceVersion: every change after it is replayed", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/pods?watch=1&resourceVersion="+rvAfterA)
		expect(t, ws, "ADDED b", "ADDED c", "MODIFIED a", "MODIFIED c", "DELETED b")
	})

	t.Run("the legacy /watch/ path watches one object", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/watch/namespaces/default/pods/a")
		expect(t, ws, "ADDED a")
		setLabel(t, s, "default", "a", "y", "2")
		expect(t, ws, "MODIFIED a")
	})

	t.Run("label selector: leaving it is DELETED, entering it is ADDED", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/pods?watch=true&labelSelector=app%3Dweb")
		expect(t, ws, "ADDED a")
		setLabel(t, s, "default", "a", "app", "")
		expect(t, ws, "DELETED a")
		setLabel(t, s, "default", "a", "app", "web")
		expect(t, ws, "ADDED a")
	})

	t.Run("field selector: binding a pod to the node is ADDED for the kubelet's watch", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dnode1")
		if _, err := s.UpdateFunc(cluster.KindPod, "kube-system", "c", func(o cluster.Object) error {
			o.(*corev1.Pod).Spec.NodeName = "node1"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		expect(t, ws, "ADDED c")
		if _, err := s.UpdateStatusFunc(cluster.KindPod, "kube-system", "c", func(o cluster.Object) error {
			o.(*corev1.Pod).Status.Phase = corev1.PodRunning
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		expect(t, ws, "MODIFIED c")
	})

	t.Run("sendInitialEvents: ADDED, then the initial-events-end BOOKMARK", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
		expect(t, ws, "ADDED a")
		ev, _ := ws.next(t)
		m := ev.meta(t)
		if ev.Type != "BOOKMARK" || m.Annotations[metav1.InitialEventsAnnotationKey] != "true" || m.ResourceVersion != s.ResourceVersion() {
			t.Errorf("got %s %+v, want the initial-events-end bookmark at %s", ev.Type, m, s.ResourceVersion())
		}
	})

	t.Run("sendInitialEvents=false starts at the most recent version", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=false&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
		if _, err := s.Create(pod("default", "late", nil)); err != nil {
			t.Fatal(err)
		}
		expect(t, ws, "ADDED late")
	})

	t.Run("allowWatchBookmarks: periodic bookmarks carry the version delivered", func(t *testing.T) {
		rv := s.ResourceVersion()
		ws := ts.watch(t, "/api/v1/namespaces/kube-system/pods?watch=true&allowWatchBookmarks=true&resourceVersion="+rv)
		for {
			select {
			case ev := <-ws.events:
				if ev.Type != "BOOKMARK" {
					t.Fatalf("got %s before any bookmark", ev.Type)
				}
				if got := ev.meta(t).ResourceVersion; got != rv {
					t.Errorf("bookmark at %s, want %s", got, rv)
				}
				return
			case <-time.After(10 * time.Second):
				t.Fatal("no bookmark")
			}
		}
	})

	t.Run("timeoutSeconds ends the stream", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/namespaces/kube-system/pods?watch=true&timeoutSeconds=1&resourceVersion="+s.ResourceVersion())
		if ev, ok := ws.next(t); ok {
			t.Errorf("got %s, want the stream to end", ev.Type)
		}
	})

	t.Run("a version not reached yet: ERROR event with Too large resource version", func(t *testing.T) {
		ws := ts.watch(t, "/api/v1/pods?watch=true&resourceVersion=99999999")
		ev, _ := ws.next(t)
		if ev.Type != "ERROR" || !strings.Contains(string(ev.Object), "Too large resource version") || !strings.Contains(string(ev.Object), `"code":504`) {
			t.Errorf("got %s %s", ev.Type, ev.Object)
		}
	})

	t.Run("the client going away ends the watch on the server", func(t *testing.T) {
		gauge := func() string {
			r := ts.do(t, "GET", "/metrics", "", nil)
			for _, l := range strings.Split(string(r.body), "\n") {
				if strings.HasPrefix(l, `apiserver_longrunning_requests{resource="configmaps"`) {
					return l[strings.LastIndexByte(l, ' ')+1:]
				}
			}
			return ""
		}
		ws := ts.watch(t, "/api/v1/configmaps?watch=true")
		if err := eventually(func() bool { return gauge() == "1" }); err != nil {
			t.Fatalf("open watch not counted: %q", gauge())
		}
		ws.stop()
		if err := eventually(func() bool { return gauge() == "0" }); err != nil {
			t.Fatalf("watch still open on the server after the client left: %q", gauge())
		}
	})
}

// TestWatchTooOld: a watch from a version older than the history kept
// gets 410 Gone. "If the requested resourceVersion is too old, the server
// responds with 410 Gone" (API concepts, Efficient detection of changes);
// the watch cache sends it as an ERROR event once the watch is accepted.
func TestWatchTooOld(t *testing.T) {
	ts := newTestServer(t, Options{})
	s := ts.store
	if _, err := s.Create(pod("default", "churn", nil)); err != nil {
		t.Fatal(err)
	}
	first := s.ResourceVersion()
	// Push the first version out of the store's bounded history.
	for i := 0; i < 20010; i++ {
		setLabel(t, s, "default", "churn", "n", strconv.Itoa(i))
	}
	ws := ts.watch(t, "/api/v1/pods?watch=true&resourceVersion="+first)
	ev, _ := ws.next(t)
	if ev.Type != "ERROR" || !strings.Contains(string(ev.Object), `"code":410`) || !strings.Contains(string(ev.Object), `"reason":"Expired"`) {
		t.Fatalf("got %s %s, want ERROR 410 Expired", ev.Type, ev.Object)
	}
	if _, ok := ws.next(t); ok {
		t.Error("stream goes on after the ERROR")
	}
}

func TestWatchEndsOnShutdown(t *testing.T) {
	ts := newTestServer(t, Options{})
	ws := ts.watch(t, "/api/v1/pods?watch=true&resourceVersion="+ts.store.ResourceVersion())
	// Make sure the stream is established before shutting down.
	if _, err := ts.store.Create(pod("default", "x", nil)); err != nil {
		t.Fatal(err)
	}
	expect(t, ws, "ADDED x")
	ts.cancel()
	for _, c := range []chan error{ts.stopped, ts.tcpStops} {
		select {
		case err := <-c:
			if err != nil {
				t.Errorf("Serve = %v", err)
			}
			c <- err // for the cleanup
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return with a watch open")
		}
	}
	if ev, ok := ws.next(t); ok {
		t.Errorf("got %s after shutdown, want the stream to end", ev.Type)
	}
	// The socket file is gone with the listener.
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://localhost/healthz", nil)
	if resp, err := ts.unix.Do(req); err == nil {
		resp.Body.Close()
		t.Error("server still answers after shutdown")
	}
}
