package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/admission"
	"github.com/switchboard-dev/switchboard/localapi"
	"github.com/switchboard-dev/switchboard/node"
)

// lineLogs is a LogStreamer serving fixed lines per container.
type lineLogs map[string][]string

func (l lineLogs) StreamLogs(ctx context.Context, namespace, pod string, opts node.LogOptions, w io.Writer) error {
	lines, ok := l[namespace+"/"+pod+"/"+opts.Container]
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is not valid", opts.Container, pod))
	}
	if opts.TailLines != nil && int(*opts.TailLines) < len(lines) {
		lines = lines[len(lines)-int(*opts.TailLines):]
	}
	for _, line := range lines {
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// realNode serves a real cluster.Store through the real local API on a
// unix socket, as `switchboard up` does, and plays the kubelet's part in
// pod deletion: a pod marked for deletion is removed (grace 0) shortly
// after, once "its containers stopped".
func realNode(t *testing.T) (*cluster.Store, *Options) {
	t.Helper()
	dir := t.TempDir()
	store := cluster.NewStore()
	// The API server's defaulting and validation, as `switchboard up` runs
	// them on every write.
	store.Use(admission.Default, admission.Validate)
	if _, err := store.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := localapi.ListenUnix(filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-served
	})
	go func() {
		defer close(served)
		localapi.Serve(ctx, ln, localapi.New(store, localapi.Options{
			Logs: lineLogs{"default/web-0/web": {"listening on :8080", "GET /healthz 200"}},
		}))
	}()
	w, err := store.Watch(cluster.KindPod, cluster.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if ev.Type != watch.Modified || !ok || p.DeletionTimestamp == nil {
				continue
			}
			time.AfterFunc(200*time.Millisecond, func() {
				store.Delete(cluster.KindPod, p.Namespace, p.Name, cluster.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), UID: p.UID})
			})
		}
	}()
	return store, &Options{StateDir: &dir}
}

func TestWithLocalAPI(t *testing.T) {
	store, opts := realNode(t)
	now := time.Now()
	pod := webPod(now)
	pod.Name, pod.UID, pod.ResourceVersion = "web-0", "", ""
	created, err := store.Create(pod)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(&corev1.Service{
		ObjectMeta: webService(now).ObjectMeta,
		Spec:       webService(now).Spec,
	}); err != nil {
		t.Fatal(err)
	}
	rec := cluster.NewRecorder(store, "kubelet", "node-1")
	for i := 0; i < 3; i++ {
		rec.Eventf(created, corev1.EventTypeWarning, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500")
	}
	rec.Eventf(created, corev1.EventTypeNormal, "Killing", "Container web failed liveness probe, will be restarted")

	t.Run("get pods -o wide", func(t *testing.T) {
		stdout, stderr, err := run(t, opts, "", "get", "pods", "-o", "wide")
		if err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		rows := cells(stdout)
		if len(rows) != 2 || rows[1][0] != "web-0" || rows[1][1] != "1/1" || rows[1][2] != "Running" || rows[1][5] != "127.1.0.5" {
			t.Errorf("got %q", rows)
		}
	})
	t.Run("get svc -o yaml", func(t *testing.T) {
		stdout, _, err := run(t, opts, "", "get", "svc", "web", "-o", "yaml")
		if err != nil || !strings.Contains(stdout, "kind: Service\n") || !strings.Contains(stdout, "clusterIP: 10.96.0.20\n") {
			t.Errorf("err %v:\n%s", err, stdout)
		}
	})
	t.Run("describe pod shows the recorder's aggregated events", func(t *testing.T) {
		stdout, stderr, err := run(t, opts, "", "describe", "pod", "web-0")
		if err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		for _, want := range []string{
			"Liveness:       http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3",
			"Restart Count:  3",
			"Warning  Unhealthy",
			"(x3 over",
			"kubelet  Liveness probe failed: HTTP probe failed with statuscode: 500",
			"Normal   Killing",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("missing %q in:\n%s", want, stdout)
			}
		}
	})
	t.Run("logs", func(t *testing.T) {
		stdout, stderr, err := run(t, opts, "", "logs", "web-0", "--tail", "1")
		if err != nil || stdout != "GET /healthz 200\n" {
			t.Errorf("stdout %q stderr %q err %v", stdout, stderr, err)
		}
	})
	t.Run("delete waits for the node to remove the pod", func(t *testing.T) {
		stdout, stderr, err := run(t, opts, "", "delete", "pod", "web-0")
		if err != nil || stdout != "pod \"web-0\" deleted\n" {
			t.Fatalf("stdout %q stderr %q err %v", stdout, stderr, err)
		}
		if _, err := store.Get(cluster.KindPod, "default", "web-0"); !apierrors.IsNotFound(err) {
			t.Errorf("after delete returned, the pod is still there (%v)", err)
		}
	})
	t.Run("NotFound comes back in kubectl's words", func(t *testing.T) {
		_, stderr, err := run(t, opts, "", "get", "deployment", "nope")
		if err == nil || stderr != "Error from server (NotFound): deployments.apps \"nope\" not found\n" {
			t.Errorf("stderr %q", stderr)
		}
	})
}

// TestApplyWithLocalAPI runs apply's create / unchanged / configured /
// invalid flow against the real local API and store (with admission).
func TestApplyWithLocalAPI(t *testing.T) {
	store, opts := realNode(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "extra.yaml", extraYAML)
	steps := []struct {
		name, content, wantOut, wantErr string
	}{
		{"create", extraYAML, "namespace/extra-ns created\nservice/extra created\ndeployment.apps/extra created\n", ""},
		{"the same again is unchanged", extraYAML, "namespace/extra-ns unchanged\nservice/extra unchanged\ndeployment.apps/extra unchanged\n", ""},
		{"a change is configured", strings.Replace(extraYAML, "replicas: 2", "replicas: 4", 1),
			"namespace/extra-ns unchanged\nservice/extra unchanged\ndeployment.apps/extra configured\n", ""},
		{"an invalid object is the server's Invalid error, the rest applied",
			strings.Replace(strings.Replace(extraYAML, "replicas: 2", "replicas: 4", 1), "port: 80", "port: 70000", 1),
			"namespace/extra-ns unchanged\ndeployment.apps/extra unchanged\n",
			`Error from server (Invalid): error when updating "` + file + `": Service "extra" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive`},
	}
	for _, st := range steps {
		writeFile(t, dir, "extra.yaml", st.content)
		stdout, stderr, err := run(t, opts, "", "apply", "-f", file)
		if (err != nil) != (st.wantErr != "") || stdout != st.wantOut || !strings.HasPrefix(stderr, st.wantErr) {
			t.Errorf("%s: err %v\nstdout %q\nstderr %q\nwant %q %q", st.name, err, stdout, stderr, st.wantOut, st.wantErr)
		}
	}
	d, err := store.Get(cluster.KindDeployment, "default", "extra")
	if err != nil || *d.(*appsv1.Deployment).Spec.Replicas != 4 {
		t.Errorf("deployment %v, %v", d, err)
	}
}
