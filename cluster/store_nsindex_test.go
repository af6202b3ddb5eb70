package cluster

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// List of one namespace reads that namespace's index (as an informer's
// namespace index), which follows creates, updates and deletes, and gives
// the same sorted result as a filter over every object.
func TestListNamespaceIndex(t *testing.T) {
	s := NewStore()
	cm := func(ns, name string, lbl map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl}}
	}
	for _, c := range []*corev1.ConfigMap{
		cm("b", "z", nil), cm("a", "y", map[string]string{"x": "1"}), cm("a", "a", nil), cm("ab", "a", nil), cm("b", "a", map[string]string{"x": "1"}),
	} {
		if _, err := s.Create(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Update(cm("a", "a", map[string]string{"x": "1"})); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(KindConfigMap, "b", "z", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	keys := func(objs []Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, KeyOf(o))
		}
		return out
	}
	x1 := labels.SelectorFromSet(labels.Set{"x": "1"})
	tests := []struct {
		ns   string
		sel  labels.Selector
		want []string
	}{
		{"", nil, []string{"a/a", "a/y", "ab/a", "b/a"}},
		{"a", nil, []string{"a/a", "a/y"}},
		{"a", x1, []string{"a/a", "a/y"}},
		{"b", nil, []string{"b/a"}},
		{"", x1, []string{"a/a", "a/y", "b/a"}},
		{"none", nil, nil},
	}
	for _, tc := range tests {
		got, _ := s.List(KindConfigMap, tc.ns, tc.sel)
		if !slices.Equal(keys(got), tc.want) {
			t.Errorf("List(%q, %v) = %v, want %v", tc.ns, tc.sel, keys(got), tc.want)
		}
	}
	if o, _ := s.List(KindConfigMap, "a", nil); o[0].GetLabels()["x"] != "1" {
		t.Errorf("the index holds a stale version after Update")
	}
	if err := s.Delete(KindConfigMap, "b", "a", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.byNS[KindConfigMap]["b"]; ok {
		t.Errorf("an emptied namespace stays in the index")
	}
}
