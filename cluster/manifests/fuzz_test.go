package manifests

import (
	"testing"

	"github.com/switchboard-dev/switchboard/cluster"
)

// FuzzDecode feeds arbitrary bytes to Decode, as a YAML and as a JSON
// file. Decode must never panic, and every document it returns must be
// exactly one of: an object of a kind the store holds, a problem with a
// message, or a skipped kind. Seeds: testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"fuzz.yaml", "fuzz.json"} {
			for _, d := range Decode(name, data) {
				if d.Index < 1 || d.Line < 1 || d.File != name {
					t.Fatalf("bad position: %+v", d)
				}
				switch {
				case d.Err != nil:
					if d.Object != nil {
						t.Fatalf("a bad document has an object")
					}
					for _, e := range d.Errors() {
						if e.Reason == "" || e.Error() == "" {
							t.Fatalf("a problem without a reason: %#v", e)
						}
					}
				case d.Object != nil:
					if cluster.KindOf(d.Object) == nil || d.Object.GetObjectKind().GroupVersionKind().Kind == "" {
						t.Fatalf("object of no known kind: %T", d.Object)
					}
				default:
					if !d.Skipped() || d.Kind == "" {
						t.Fatalf("neither object, problem nor skipped kind: %+v", d)
					}
				}
			}
		}
	})
}
