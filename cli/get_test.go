package cli

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/switchboard-dev/switchboard/cluster"
)

// newPopulatedAPI serves the web fixtures (pod, service, slice,
// deployment, replica sets, events) and a pod in another namespace.
func newPopulatedAPI(t *testing.T) *fakeAPI {
	f := newFakeAPI(t)
	now := time.Now()
	db := webPod(now)
	db.Name, db.Namespace, db.UID = "db-0", "data", "uid-db"
	db.Labels = map[string]string{"app": "db"}
	db.OwnerReferences = nil
	db.Status.ContainerStatuses[0].RestartCount = 0
	db.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{}
	f.add(webPod(now), db, webService(now), webSlice(now), webDeployment(now))
	for _, rs := range webReplicaSets(now) {
		f.add(rs)
	}
	for _, e := range podEvents(now) {
		f.add(e)
	}
	return f
}

func TestGet(t *testing.T) {
	f := newPopulatedAPI(t)
	cases := []struct {
		name       string
		args       []string
		wantRows   [][]string // stdout table cells
		wantStderr string
		wantErr    bool
	}{
		{"get pods -o wide", []string{"get", "pods", "-o", "wide"}, [][]string{
			{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"},
			{"web-7d4b9c-x2x9z", "1/1", "Running", "3 (12s ago)", "20m", "127.1.0.5", "node-1", "<none>", "<none>"}}, "", false},
		{"get po -A lists every namespace with NAMESPACE first", []string{"get", "po", "-A"}, [][]string{
			{"NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"},
			{"data", "db-0", "1/1", "Running", "0", "20m"},
			{"default", "web-7d4b9c-x2x9z", "1/1", "Running", "3 (12s ago)", "20m"}}, "", false},
		{"-n selects the namespace", []string{"get", "pods", "-n", "data"}, [][]string{
			{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}, {"db-0", "1/1", "Running", "0", "20m"}}, "", false},
		{"-l filters by label on the server", []string{"get", "pods", "-A", "-l", "app=db"}, [][]string{
			{"NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"}, {"data", "db-0", "1/1", "Running", "0", "20m"}}, "", false},
		{"get svc NAME", []string{"get", "svc", "web"}, [][]string{
			{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}, {"web", "ClusterIP", "10.96.0.20", "<none>", "80/TCP,9090/TCP", "20m"}}, "", false},
		{"TYPE/NAME form", []string{"get", "deployment/web"}, [][]string{
			{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, {"web", "2/3", "3", "2", "20m"}}, "", false},
		{"an empty list says so on stderr", []string{"get", "configmaps"}, nil, "No resources found in default namespace.\n", false},
		{"an empty list across namespaces", []string{"get", "secrets", "-A"}, nil, "No resources found\n", false},
		{"NotFound is kubectl's error and fails", []string{"get", "pod", "nope"}, nil, "Error from server (NotFound): pods \"nope\" not found\n", true},
		{"a name with -A fails as kubectl", []string{"get", "pod", "x", "-A"}, nil,
			"error: a resource cannot be retrieved by name across all namespaces\n", true},
		{"an unknown type fails", []string{"get", "widgets"}, nil, "error: the server doesn't have a resource type \"widgets\"\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := run(t, f.opts, "", tc.args...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v; stderr %q", err, tc.wantErr, stderr)
			}
			if err != nil && !errors.Is(err, ErrReported) {
				t.Errorf("error %v is not marked ErrReported", err)
			}
			if stderr != tc.wantStderr {
				t.Errorf("stderr %q, want %q", stderr, tc.wantStderr)
			}
			if tc.wantRows == nil {
				if stdout != "" {
					t.Errorf("stdout %q, want nothing", stdout)
				}
				return
			}
			got := cells(stdout)
			if len(got) != len(tc.wantRows) {
				t.Fatalf("got %d rows, want %d:\n%s", len(got), len(tc.wantRows), stdout)
			}
			for i := range got {
				if strings.Join(got[i], "|") != strings.Join(tc.wantRows[i], "|") {
					t.Errorf("row %d: got %q, want %q", i, got[i], tc.wantRows[i])
				}
			}
		})
	}
}

// TestGetAll checks `get all`: pods, services, deployments and replica
// sets in sections separated by a blank line, names prefixed kind/.
func TestGetAll(t *testing.T) {
	f := newPopulatedAPI(t)
	stdout, stderr, err := run(t, f.opts, "", "get", "all")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	sections := strings.Split(strings.TrimRight(stdout, "\n"), "\n\n")
	want := [][]string{
		{"NAME", "pod/web-7d4b9c-x2x9z"},
		{"NAME", "service/web"},
		{"NAME", "deployment.apps/web"},
		{"NAME", "replicaset.apps/web-5f6a7b", "replicaset.apps/web-7d4b9c"},
	}
	if len(sections) != len(want) {
		t.Fatalf("got %d sections, want %d:\n%s", len(sections), len(want), stdout)
	}
	for i, s := range sections {
		var names []string
		for _, r := range cells(s) {
			names = append(names, r[0])
		}
		if strings.Join(names, " ") != strings.Join(want[i], " ") {
			t.Errorf("section %d names %q, want %q", i, names, want[i])
		}
	}
}

func TestGetOutputFormats(t *testing.T) {
	f := newPopulatedAPI(t)
	want := f.object(cluster.KindService, "default", "web").(*corev1.Service)

	t.Run("-o yaml of one named object prints the object with apiVersion and kind", func(t *testing.T) {
		stdout, _, err := run(t, f.opts, "", "get", "svc", "web", "-o", "yaml")
		if err != nil {
			t.Fatal(err)
		}
		var got corev1.Service
		if err := yaml.UnmarshalStrict([]byte(stdout), &got); err != nil {
			t.Fatalf("%v:\n%s", err, stdout)
		}
		if got.APIVersion != "v1" || got.Kind != "Service" || got.Name != want.Name ||
			got.Spec.ClusterIP != want.Spec.ClusterIP || got.ResourceVersion != want.ResourceVersion || len(got.Spec.Ports) != 2 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("-o json of a list prints a v1 List", func(t *testing.T) {
		stdout, _, err := run(t, f.opts, "", "get", "pods", "-A", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			metav1.TypeMeta
			Items []corev1.Pod `json:"items"`
		}
		if err := yaml.Unmarshal([]byte(stdout), &list); err != nil {
			t.Fatal(err)
		}
		if list.Kind != "List" || list.APIVersion != "v1" || len(list.Items) != 2 {
			t.Fatalf("got %s/%s with %d items:\n%s", list.APIVersion, list.Kind, len(list.Items), stdout)
		}
		for _, p := range list.Items {
			if p.Kind != "Pod" || p.APIVersion != "v1" {
				t.Errorf("item %s has apiVersion %q kind %q", p.Name, p.APIVersion, p.Kind)
			}
		}
		if !strings.Contains(stdout, "\n    \"apiVersion\"") {
			t.Errorf("JSON is not indented by four spaces as kubectl's:\n%.200s", stdout)
		}
	})
	t.Run("-o name prints kind/name", func(t *testing.T) {
		stdout, _, err := run(t, f.opts, "", "get", "deploy,rs,endpointslices", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		wantOut := "deployment.apps/web\nreplicaset.apps/web-5f6a7b\nreplicaset.apps/web-7d4b9c\nendpointslice.discovery.k8s.io/web-abc12\n"
		if stdout != wantOut {
			t.Errorf("got %q, want %q", stdout, wantOut)
		}
	})
	t.Run("an unknown -o fails before asking the server", func(t *testing.T) {
		_, stderr, err := run(t, f.opts, "", "get", "pods", "-o", "toml")
		if err == nil || !strings.Contains(stderr, `output format "toml"`) {
			t.Errorf("err %v, stderr %q", err, stderr)
		}
	})
}

// TestGetWatch checks get -w: the current rows, then a row per change.
func TestGetWatch(t *testing.T) {
	f := newPopulatedAPI(t)
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		_, _, err := runTo(ctx, t, f.opts, "", &out, &errOut, "get", "pods", "-w")
		done <- err
	}()
	waitFor(t, func() bool { return strings.Contains(out.String(), "web-7d4b9c-x2x9z") })
	waitFor(t, func() bool {
		for _, r := range f.requestsMatching("GET", "/api/v1/namespaces/default/pods") {
			if strings.Contains(r.Query, "watch=true") {
				return true
			}
		}
		return false
	})
	p := webPod(time.Now())
	p.Name, p.UID = "web-new", "uid-web-new"
	p.Status.ContainerStatuses[0] = waiting("web", "ContainerCreating", 0)
	p.Status.Phase = corev1.PodPending
	f.mu.Lock()
	f.stamp(cluster.KindPod, p)
	f.objs[cluster.KindPod][cluster.KeyOf(p)] = p
	f.publishLocked(cluster.KindPod, "ADDED", p)
	f.mu.Unlock()
	waitFor(t, func() bool { return strings.Contains(out.String(), "web-new") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("watch ended with %v", err)
	}
	rows := cells(out.String())
	if len(rows) != 3 || rows[0][0] != "NAME" || rows[2][0] != "web-new" || rows[2][2] != "ContainerCreating" {
		t.Errorf("got rows %q", rows)
	}
	if lines := strings.Split(out.String(), "\n"); strings.Index(lines[0], "STATUS") != strings.Index(lines[2], "ContainerCreating") {
		t.Errorf("rows do not line up with the header:\n%s", out.String())
	}
}
