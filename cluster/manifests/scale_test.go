package manifests

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/cluster"
)

// The source keeps, between reloads, a hash per file and per document
// (docInfo), not the decoded documents: a file whose content did not
// change is not decoded again, and a document whose content did not
// change is not applied again.
func TestSourceKeepsHashesAndSkipsUnchangedFiles(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", service("web", 80)+"---\n"+service("api", 81))
	f.write("b.yaml", service("other", 82))
	f.source()
	if errs := f.run(); len(errs) > 0 {
		t.Fatal(errorStrings(errs))
	}
	rv := func(name string) string { return f.get(cluster.KindService, "default", name).GetResourceVersion() }
	state := func(rel string) (*fileState, int) {
		f.src.mu.Lock()
		defer f.src.mu.Unlock()
		return f.src.files[f.path(rel)], len(f.src.decoded)
	}
	b0, decoded := state("b.yaml")
	if decoded != 0 {
		t.Fatalf("%d decoded files kept after the load; want none", decoded)
	}
	if b0 == nil || len(b0.docs) != 1 || !b0.docs[0].ok || b0.docs[0].sum == ([32]byte{}) {
		t.Fatalf("b.yaml state = %+v; want one good document with its hash", b0)
	}
	apiRV, otherRV := rv("api"), rv("other")

	// b.yaml rewritten with the same bytes, a.yaml with one document changed.
	f.write("b.yaml", service("other", 82))
	f.write("a.yaml", service("web", 8080)+"---\n"+service("api", 81))
	f.eventually("web is updated", func() bool { return f.servicePort("web") == 8080 })
	f.eventually("the reload settles", func() bool { _, n := state("a.yaml"); return n == 0 })

	if b1, _ := state("b.yaml"); b1 != b0 {
		t.Errorf("b.yaml was decoded again although its content did not change")
	}
	if got := rv("api"); got != apiRV {
		t.Errorf("api was written again (resourceVersion %s -> %s) although its document did not change", apiRV, got)
	}
	if got := rv("other"); got != otherRV {
		t.Errorf("other was written again (resourceVersion %s -> %s) although its file did not change", otherRV, got)
	}
}

// Field lines are found from the document's text only when a problem
// needs one; the text is parsed once and then dropped.
func TestLocatorParsesOnDemand(t *testing.T) {
	text := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 70000\n")
	tests := []struct {
		path string
		want int
	}{
		{"spec.ports[0].port", 7 + 10},
		{"metadata.name", 4 + 10},
		{"spec.missing", 6 + 10}, // where the closest enclosing field present (spec) starts
	}
	loc := newLocator(text, 10)
	if loc.src.root != nil {
		t.Fatal("parsed before any line was asked for")
	}
	for _, tc := range tests {
		if got := loc.lineOf(tc.path); got != tc.want {
			t.Errorf("lineOf(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
	if loc.src.text != nil {
		t.Error("the text is kept after parsing")
	}
	if got := newLocator([]byte("a: [unclosed\n"), 0).lineOf("a"); got != 0 {
		t.Errorf("unparsable text: lineOf = %d, want 0", got)
	}
}

// A document the store refused is not decoded again at each reload of
// other files: its problem stands until its own file changes.
func TestSourceRefusedDocumentNotRedecoded(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", service("web", 80)+"---\n"+service("bad", 70000))
	f.write("b.yaml", service("other", 82))
	f.source()
	first := f.run()
	if len(first) == 0 || !strings.Contains(errorStrings(first), "Service default/bad: spec.ports[0].port") {
		t.Fatalf("problems = %v; want the port of bad", errorStrings(first))
	}
	// The watch's first (full) reload tries refused documents again.
	f.eventually("the watch's first reload", func() bool { return testutil.ToFloat64(f.src.reloads) >= 2 })
	a0 := func() *fileState {
		f.src.mu.Lock()
		defer f.src.mu.Unlock()
		return f.src.files[f.path("a.yaml")]
	}()
	f.write("b.yaml", service("other", 83))
	f.eventually("other is updated", func() bool { return f.servicePort("other") == 83 })
	f.src.mu.Lock()
	a1, errs := f.src.files[f.path("a.yaml")], f.src.errorsLocked()
	f.src.mu.Unlock()
	if a1 != a0 {
		t.Errorf("a.yaml was decoded again although it did not change")
	}
	if errorStrings(errs) != errorStrings(first) {
		t.Errorf("standing problems = %v; want bad's, as before: %v", errorStrings(errs), errorStrings(first))
	}
	f.write("a.yaml", service("web", 80)+"---\n"+service("bad", 8080))
	f.eventually("bad is applied once fixed", func() bool { return f.exists(cluster.KindService, "default", "bad") })
	if errs := f.src.Errors(); len(errs) != 0 {
		t.Errorf("problems after the fix: %v", errorStrings(errs))
	}
}
