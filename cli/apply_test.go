package cli

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

const extraYAML = `apiVersion: v1
kind: Service
metadata:
  name: extra
spec:
  selector:
    app: extra
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: extra
  labels:
    app: extra
spec:
  replicas: 2
  selector:
    matchLabels:
      app: extra
  template:
    metadata:
      labels:
        app: extra
    spec:
      containers:
      - name: web
        image: switchboard
        command: ["switchboard", "demo", "http"]
---
apiVersion: v1
kind: Namespace
metadata:
  name: extra-ns
`

// TestApply checks kubectl apply's flow: objects that do not exist are
// created, existing ones replaced ("configured") or left alone when
// nothing changed ("unchanged", the server keeps the resourceVersion),
// namespaces go first, and each object is named kind[.group]/name.
func TestApply(t *testing.T) {
	f := newPopulatedAPI(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "extra.yaml", extraYAML)

	stdout, stderr, err := run(t, f.opts, "", "apply", "-f", file)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	want := "namespace/extra-ns created\nservice/extra created\ndeployment.apps/extra created\n"
	if stdout != want {
		t.Errorf("first apply:\n%s\nwant:\n%s", stdout, want)
	}
	if d, _ := f.object(cluster.KindDeployment, "default", "extra").(*appsv1.Deployment); d == nil || *d.Spec.Replicas != 2 {
		t.Fatalf("deployment not created as written: %+v", d)
	}

	stdout, _, err = run(t, f.opts, "", "apply", "-f", dir)
	if err != nil {
		t.Fatal(err)
	}
	want = "namespace/extra-ns unchanged\nservice/extra unchanged\ndeployment.apps/extra unchanged\n"
	if stdout != want {
		t.Errorf("second apply:\n%s\nwant:\n%s", stdout, want)
	}

	writeFile(t, dir, "extra.yaml", strings.Replace(extraYAML, "replicas: 2", "replicas: 3", 1))
	stdout, _, err = run(t, f.opts, "", "apply", "-f", file)
	if err != nil {
		t.Fatal(err)
	}
	want = "namespace/extra-ns unchanged\nservice/extra unchanged\ndeployment.apps/extra configured\n"
	if stdout != want {
		t.Errorf("apply after a change:\n%s\nwant:\n%s", stdout, want)
	}
	if d := f.object(cluster.KindDeployment, "default", "extra").(*appsv1.Deployment); *d.Spec.Replicas != 3 {
		t.Errorf("replicas %d after configure", *d.Spec.Replicas)
	}
	for _, r := range f.requestsMatching("PUT", "/apis/apps/v1/namespaces/default/deployments/extra") {
		if !strings.Contains(string(r.Body), `"resourceVersion":"`) {
			t.Errorf("update without the server's resourceVersion: %s", r.Body)
		}
	}
}

// TestApplyErrors checks that a failing document is reported with its
// file and the server's Status message and causes, that the others are
// still applied, and that the command then fails.
func TestApplyErrors(t *testing.T) {
	f := newPopulatedAPI(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "bad.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: before
data:
  a: "1"
---
apiVersion: v1
kind: Service
metadata:
  name: broken
spec:
  ports:
  - port: 70000
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: after
  namespace: other
`)
	stdout, stderr, err := run(t, f.opts, "", "apply", "-f", file)
	if err == nil {
		t.Fatal("apply with an invalid document succeeded")
	}
	if stdout != "configmap/after created\nconfigmap/before created\n" && stdout != "configmap/before created\nconfigmap/after created\n" {
		t.Errorf("stdout %q", stdout)
	}
	wantErr := `Error from server (Invalid): error when creating "` + file + `" (document 2, line 8): Service "broken" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive` + "\n"
	if stderr != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, wantErr)
	}
	if f.object(cluster.KindConfigMap, "other", "after") == nil || f.object(cluster.KindConfigMap, "default", "before") == nil {
		t.Error("the valid documents were not applied")
	}

	t.Run("-n must match a namespace the document names", func(t *testing.T) {
		_, stderr, err := run(t, f.opts, "", "apply", "-f", file, "-n", "default")
		if err == nil || !strings.Contains(stderr, `the namespace from the provided object "other" does not match the namespace "default"`) {
			t.Errorf("stderr %q", stderr)
		}
	})
	t.Run("a missing file", func(t *testing.T) {
		_, stderr, err := run(t, f.opts, "", "apply", "-f", dir+"/nope.yaml")
		if err == nil || !strings.Contains(stderr, "nope.yaml") {
			t.Errorf("stderr %q", stderr)
		}
	})
}

func TestApplyStdinAndNamespace(t *testing.T) {
	f := newPopulatedAPI(t)
	stdout, stderr, err := run(t, f.opts, `apiVersion: v1
kind: ConfigMap
metadata:
  name: from-stdin
data:
  k: v
`, "apply", "-f", "-", "-n", "data")
	if err != nil || stdout != "configmap/from-stdin created\n" {
		t.Fatalf("stdout %q stderr %q err %v", stdout, stderr, err)
	}
	if cm, _ := f.object(cluster.KindConfigMap, "data", "from-stdin").(*corev1.ConfigMap); cm == nil || cm.Data["k"] != "v" {
		t.Errorf("not created in -n's namespace: %+v", cm)
	}
}

// TestApplyKeepsAllocatedServiceFields checks that replacing a Service
// from a manifest without clusterIP keeps the allocated one (the API
// server's service strategy does the same on update).
func TestApplyKeepsAllocatedServiceFields(t *testing.T) {
	f := newPopulatedAPI(t)
	file := writeFile(t, t.TempDir(), "svc.yaml", `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
`)
	stdout, stderr, err := run(t, f.opts, "", "apply", "-f", file)
	if err != nil || stdout != "service/web configured\n" {
		t.Fatalf("stdout %q stderr %q err %v", stdout, stderr, err)
	}
	if svc := f.object(cluster.KindService, "default", "web").(*corev1.Service); svc.Spec.ClusterIP != "10.96.0.20" {
		t.Errorf("clusterIP %q after apply", svc.Spec.ClusterIP)
	}
}

func TestDeleteFromFile(t *testing.T) {
	f := newPopulatedAPI(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "extra.yaml", extraYAML)
	if _, stderr, err := run(t, f.opts, "", "apply", "-f", file); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	stdout, stderr, err := run(t, f.opts, "", "delete", "-f", file)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	want := "namespace \"extra-ns\" deleted\nservice \"extra\" deleted\ndeployment.apps \"extra\" deleted\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	_, stderr, err = run(t, f.opts, "", "delete", "-f", file)
	if err == nil || !strings.Contains(stderr, "Error from server (NotFound): services \"extra\" not found\n") {
		t.Errorf("second delete: err %v stderr %q", err, stderr)
	}
}

// TestApplyBadDocuments checks that documents the manifests package
// rejects (here an unknown field) and kinds a node does not serve are
// reported with file and document, while the good ones are applied.
func TestApplyBadDocuments(t *testing.T) {
	f := newPopulatedAPI(t)
	file := writeFile(t, t.TempDir(), "mixed.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: good
---
apiVersion: v1
kind: Service
metadata:
  name: typo
spec:
  portz:
  - port: 80
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
`)
	stdout, stderr, err := run(t, f.opts, "", "apply", "-f", file)
	if err == nil {
		t.Fatal("apply succeeded")
	}
	if stdout != "configmap/good created\n" {
		t.Errorf("stdout %q", stdout)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stderr %q", stderr)
	}
	if !strings.HasPrefix(lines[0], "error: "+file+": document 2 (line 6)") || !strings.Contains(lines[0], "portz") {
		t.Errorf("unknown field: %q", lines[0])
	}
	want := `error: resource mapping not found for ` + file + ` (document 3, line 14): no matches for kind "Widget" in version "example.com/v1"`
	if lines[1] != want {
		t.Errorf("unknown kind:\n%q\nwant\n%q", lines[1], want)
	}
	if f.object(cluster.KindService, "default", "typo") != nil {
		t.Error("the bad document was applied")
	}
}
