package manifests

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// want describes one decoded document.
type want struct {
	index, item, line int
	kind, name        string
	skipped           bool
	field             string // a problem at this field path ("" with reason set: a document-level problem)
	reason            string // substring of the problem's reason
	fieldLine         int    // when set, the line the problem points at
}

func checkDocs(t *testing.T, docs []Document, wants []want) {
	t.Helper()
	if len(docs) != len(wants) {
		for _, d := range docs {
			t.Logf("got document %d item %d line %d %s %v err=%v", d.Index, d.Item, d.Line, d.Kind, d.Object != nil, d.Err)
		}
		t.Fatalf("got %d documents, want %d", len(docs), len(wants))
	}
	for i, w := range wants {
		d := docs[i]
		if d.Index != w.index || d.Item != w.item || d.Line != w.line {
			t.Errorf("document %d: position %d/%d line %d, want %d/%d line %d", i, d.Index, d.Item, d.Line, w.index, w.item, w.line)
		}
		if w.kind != "" && d.Kind != w.kind {
			t.Errorf("document %d: kind %q, want %q", i, d.Kind, w.kind)
		}
		switch {
		case w.reason != "":
			if d.Err == nil {
				t.Errorf("document %d: want a problem %q at %q, got none", i, w.reason, w.field)
				continue
			}
			found := false
			for _, e := range d.Errors() {
				if e.Field == w.field && strings.Contains(e.Reason, w.reason) && (w.fieldLine == 0 || e.FieldLine == w.fieldLine) {
					found = true
				}
			}
			if !found {
				t.Errorf("document %d: no problem at %q containing %q (line %d); got %v", i, w.field, w.reason, w.fieldLine, d.Err)
			}
			if d.Object != nil {
				t.Errorf("document %d: a bad document must have no object", i)
			}
		case w.skipped:
			if !d.Skipped() {
				t.Errorf("document %d: want skipped, got object=%v err=%v", i, d.Object != nil, d.Err)
			}
		default:
			if d.Err != nil || d.Object == nil {
				t.Errorf("document %d: want an object, got err=%v", i, d.Err)
				continue
			}
			if d.Object.GetName() != w.name {
				t.Errorf("document %d: name %q, want %q", i, d.Object.GetName(), w.name)
			}
			if gvk := d.Object.GetObjectKind().GroupVersionKind(); gvk.Kind != w.kind {
				t.Errorf("document %d: object kind %v, want %s", i, gvk, w.kind)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		input string
		want  []want
	}{
		{"multi-document YAML with comments; empty documents are skipped and not counted", "a.yaml", `# a comment before anything
---
apiVersion: v1
kind: Namespace
metadata:
  name: team   # trailing comment
---
# only a comment
---

---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: team
data:
  key: value
...
`, []want{{index: 1, line: 3, kind: "Namespace", name: "team"}, {index: 2, line: 12, kind: "ConfigMap", name: "cfg"}}},

		{"kind: List items are documents of their own (document 1 item N)", "list.yaml", `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web}
  spec: {ports: [{port: 80}]}
- apiVersion: example.com/v1
  kind: Widget
  metadata: {name: w}
- apiVersion: v1
  kind: Pod
  metadata: {name: p}
  spec:
    containers:
    - name: a
      commnd: [x]
`, []want{
			{index: 1, item: 1, line: 4, kind: "Service", name: "web"},
			{index: 1, item: 2, line: 8, kind: "Widget", skipped: true},
			{index: 1, item: 3, line: 11, field: "spec.containers[0].commnd", reason: "unknown field", fieldLine: 17},
		}},

		{"a typed list (PodList) is a List too", "pods.yaml", `apiVersion: v1
kind: PodList
items:
- metadata: {name: a}
  apiVersion: v1
  kind: Pod
`, []want{{index: 1, item: 1, line: 4, kind: "Pod", name: "a"}}},

		{"a JSON object", "svc.json", `{
  "apiVersion": "v1",
  "kind": "Service",
  "metadata": {"name": "web"},
  "spec": {"ports": [{"port": 80, "targetPort": "http"}]}
}`, []want{{index: 1, line: 1, kind: "Service", name: "web"}}},

		{"a stream of JSON objects, with a type error naming the field path", "two.json", `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"},
 "spec": {"ports": [{"port": 80}, {"port": "eighty"}]}}
`, []want{
			{index: 1, line: 1, kind: "Namespace", name: "a"},
			{index: 2, line: 2, field: "spec.ports[1].port", reason: "Invalid type: expected an integer, got a string", fieldLine: 3},
		}},

		{"unknown fields are errors naming the field path and line", "pod.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    command: [app]
    imagee: app:1
    ports:
    - containerPort: 80
      protocl: TCP
`, []want{
			{index: 1, line: 1, field: "spec.containers[0].imagee", reason: "unknown field", fieldLine: 9},
			{index: 1, line: 1, field: "spec.containers[0].ports[0].protocl", reason: "unknown field", fieldLine: 12},
		}[:1]},

		{"bad YAML is reported with its line in the file; the other documents decode", "bad.yaml", `apiVersion: v1
kind: Namespace
metadata:
  name: ok
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: broken
  labels: a: b
---
apiVersion: v1
kind: Namespace
metadata:
  name: also-ok
`, []want{
			{index: 1, line: 1, kind: "Namespace", name: "ok"},
			{index: 2, line: 6, reason: "invalid YAML: line 10: mapping values are not allowed", fieldLine: 10},
			{index: 3, line: 12, kind: "Namespace", name: "also-ok"},
		}},

		{"duplicate keys are errors (YAML forbids them)", "dup.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  name: b
`, []want{{index: 1, line: 1, reason: "already set in map"}}},

		{"unknown apiVersion/kind is skipped, not an error", "crd.yaml", `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: web
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: old
`, []want{{index: 1, line: 1, kind: "ServiceMonitor", skipped: true}, {index: 2, line: 6, kind: "Ingress", skipped: true}}},

		{"apiVersion and kind are required", "nokind.yaml", `apiVersion: v1
metadata:
  name: x
---
kind: Pod
---
name: just-data
`, []want{
			{index: 1, line: 1, field: "kind", reason: "Required value"},
			{index: 2, line: 5, field: "apiVersion", reason: "Required value"},
			{index: 3, line: 7, reason: "apiVersion and kind are required"},
		}},

		{"a scalar or a sequence is not an object", "scalar.yaml", "hello\n---\n- a\n- b\n", []want{
			{index: 1, line: 1, reason: "expected an object with apiVersion and kind, found a string"},
			{index: 2, line: 3, reason: "found an array"},
		}},

		{"only comments and blank lines: no documents", "empty.yaml", "# nothing here\n\n---\n---\n", nil},

		{"content on the --- line and CRLF line ends", "crlf.yaml", "--- {apiVersion: v1, kind: Namespace, metadata: {name: crlf}}\r\n---\r\napiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: second\r\n",
			[]want{{index: 1, line: 1, kind: "Namespace", name: "crlf"}, {index: 2, line: 3, kind: "Namespace", name: "second"}}},

		{"a bad quantity is reported with the reason", "q.yaml", `apiVersion: v1
kind: Pod
metadata: {name: q}
spec:
  containers:
  - name: a
    command: [a]
    resources: {limits: {cpu: "one"}}
`, []want{{index: 1, line: 1, reason: "quantities must match the regular expression"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkDocs(t, Decode(c.file, []byte(c.input)), c.want)
		})
	}
}

func TestDecodeAllUnknownFieldsReported(t *testing.T) {
	docs := Decode("pod.yaml", []byte(`apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    command: [app]
    imagee: app:1
    ports:
    - containerPort: 80
      protocl: TCP
`))
	if len(docs) != 1 {
		t.Fatalf("want 1 document, got %d", len(docs))
	}
	errs := docs[0].Errors()
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	if strings.Join(fields, ",") != "spec.containers[0].imagee,spec.containers[0].ports[0].protocl" {
		t.Errorf("each unknown field is its own problem: %v (%v)", fields, docs[0].Err)
	}
	if got := errs[0].Error(); got != "pod.yaml: document 1 (line 1) Pod default/web: spec.containers[0].imagee: unknown field (misspelt, or at the wrong indentation?)" {
		t.Errorf("message: %s", got)
	}
}

func TestDecodeKeepsTypedContent(t *testing.T) {
	docs := Decode("p.yaml", []byte(`apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: team
  labels: {app: web}
spec:
  containers:
  - name: app
    command: ["switchboard", "demo", "http"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /readyz, port: http}
`))
	if len(docs) != 1 || docs[0].Err != nil {
		t.Fatalf("decode: %+v", docs)
	}
	p, ok := docs[0].Object.(*corev1.Pod)
	if !ok {
		t.Fatalf("object is %T, want *corev1.Pod", docs[0].Object)
	}
	c := p.Spec.Containers[0]
	if p.Namespace != "team" || p.Labels["app"] != "web" || c.Ports[0].ContainerPort != 8080 ||
		c.ReadinessProbe.HTTPGet.Port.StrVal != "http" || strings.Join(c.Command, " ") != "switchboard demo http" {
		t.Errorf("decoded pod: %+v", p)
	}
	// Decode does not default: the store's admission does.
	if p.Spec.RestartPolicy != "" {
		t.Errorf("Decode must not default")
	}
}

func TestReadPaths(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ns := func(name string) string { return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n" }
	write("b.yaml", ns("b"))
	write("a.yml", ns("a"))
	write("c.json", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"c"}}`)
	write("notes.txt", ns("txt"))
	write(".hidden.yaml", ns("hidden"))
	write(".git/x.yaml", ns("git"))
	write("sub/deeper/d.YAML", ns("d"))
	write("explicit.manifest", ns("explicit"))

	names := func(docs []Document) string {
		var n []string
		for _, d := range docs {
			if d.Object != nil {
				n = append(n, d.Object.GetName())
			}
		}
		return strings.Join(n, ",")
	}
	docs, err := ReadPaths([]string{dir}, true)
	if err != nil {
		t.Fatal(err)
	}
	// Lexical order, subdirectories included; hidden files and
	// directories and non-manifest extensions skipped.
	if got := names(docs); got != "a,b,c,d" {
		t.Errorf("recursive: %s", got)
	}
	docs, _ = ReadPaths([]string{dir}, false)
	if got := names(docs); got != "a,b,c" {
		t.Errorf("not recursive: %s", got)
	}
	// A file named explicitly is read whatever its extension; a missing
	// path is an error, and the others are still read.
	docs, err = ReadPaths([]string{filepath.Join(dir, "explicit.manifest"), filepath.Join(dir, "missing"), filepath.Join(dir, "b.yaml")}, true)
	if got := names(docs); got != "explicit,b" {
		t.Errorf("explicit files: %s", got)
	}
	var pe *Error
	if !errors.As(err, &pe) || !strings.Contains(pe.Error(), "missing: cannot read: no such file or directory") {
		t.Errorf("missing path: %v", err)
	}
}

func TestReadPathsStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
	go func() {
		_, _ = w.Write([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: from-stdin}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: Bad_Name}\n  spec: {finalizerz: []}\n"))
		w.Close()
	}()
	docs, err := ReadPaths([]string{"-"}, false)
	if err != nil {
		t.Fatal(err)
	}
	checkDocs(t, docs, []want{
		{index: 1, item: 1, line: 4, kind: "Namespace", name: "from-stdin"},
		{index: 1, item: 2, line: 7, field: "spec.finalizerz", reason: "unknown field", fieldLine: 10},
	})
	if got := docs[1].Err.Error(); got != "-: document 1 item 2 (line 7) Namespace Bad_Name: spec.finalizerz: unknown field (misspelt, or at the wrong indentation?)" {
		t.Errorf("message: %s", got)
	}
}
