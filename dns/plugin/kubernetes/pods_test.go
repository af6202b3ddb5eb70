package kubernetes

import (
	"net/netip"
	"sync"
	"testing"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/switchboard-dev/switchboard/cluster"
)

// TestLabelString: an interned label set answers a selector as the
// labels.Set it was made of does.
func TestLabelString(t *testing.T) {
	sets := []map[string]string{
		nil,
		{"app": "api"},
		{"app": "api", "tier": "front"},
		{"app.kubernetes.io/name": "db", "pod-template-hash": "5d8f7c9b4"},
		{"a": "", "ab": "x"},
	}
	// The selector syntax of the `labels` option: "labels EXPRESSION ...
	// only exposes the records for Kubernetes objects that match this
	// label selector" (CoreDNS kubernetes README).
	selectors := []string{"app=api", "app in (api,db)", "tier notin (front)", "tier", "!tier", "a", "a=", "ab=x,a", "app.kubernetes.io/name=db", "b"}
	for _, sel := range selectors {
		s, err := labels.Parse(sel)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sets {
			got := s.Matches(labelsOf(internLabels(m)))
			want := s.Matches(labels.Set(m))
			if got != want {
				t.Errorf("selector %q over %v: interned %t, labels.Set %t", sel, m, got, want)
			}
		}
	}
}

func tablePod(ns, name, ip string, phase corev1.PodPhase, l map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
		Status:     corev1.PodStatus{Phase: phase, PodIP: ip},
	}
}

// TestPodTable: what the table keeps of a pod and the changes it reports,
// as the pod cache CoreDNS's `pods verified` reads (pods in phase
// Succeeded, Failed or Unknown are not listed; only Status.PodIP counts).
func TestPodTable(t *testing.T) {
	addr := func(s string) ipKey { return ipKeyOf(netip.MustParseAddr(s)) }
	type step struct {
		do   func(*PodTable) error
		want []podChange // the changes reported
	}
	running := tablePod("ns", "a", "10.0.0.1", corev1.PodRunning, map[string]string{"app": "x"})
	cases := []struct {
		name  string
		steps []step
		len   int
	}{
		{"a running pod is listed under its address", []step{
			{func(t *PodTable) error { return t.Add(running) },
				[]podChange{{ns: "ns", new: podVal{addr("10.0.0.1"), true, unique.Make("app=x")}, hasNew: true}}},
		}, 1},
		{"the same pod again reports nothing", []step{
			{func(t *PodTable) error { return t.Add(running) }, []podChange{{ns: "ns", new: podVal{addr("10.0.0.1"), true, unique.Make("app=x")}, hasNew: true}}},
			{func(t *PodTable) error { return t.Update(running.DeepCopy()) }, nil},
		}, 1},
		{"status.phase!=Failed: a failed pod is kept but not listed", []step{
			{func(t *PodTable) error { return t.Add(tablePod("ns", "a", "10.0.0.1", corev1.PodFailed, nil)) },
				[]podChange{{ns: "ns", hasNew: true}}}, // no address: not listed
		}, 1},
		{"a pending pod without an address is not listed", []step{
			{func(t *PodTable) error { return t.Add(tablePod("ns", "a", "", corev1.PodPending, nil)) },
				[]podChange{{ns: "ns", hasNew: true}}},
		}, 1},
		{"an address with a zone is no pod IP", []step{
			{func(t *PodTable) error { return t.Add(tablePod("ns", "a", "fe80::1%eth0", corev1.PodRunning, nil)) },
				[]podChange{{ns: "ns", hasNew: true}}},
		}, 1},
		{"a deletion of a pod the watch lost (DeletedFinalStateUnknown)", []step{
			{func(t *PodTable) error { return t.Add(running) }, []podChange{{ns: "ns", new: podVal{addr("10.0.0.1"), true, unique.Make("app=x")}, hasNew: true}}},
			{func(t *PodTable) error { return t.Delete(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: running}) },
				[]podChange{{ns: "ns", old: podVal{addr("10.0.0.1"), true, unique.Make("app=x")}, hadOld: true}}},
		}, 0},
		{"Replace (a relist) removes the pods it does not list", []step{
			{func(t *PodTable) error { return t.Add(running) }, []podChange{{ns: "ns", new: podVal{addr("10.0.0.1"), true, unique.Make("app=x")}, hasNew: true}}},
			{func(t *PodTable) error {
				return t.Replace([]any{tablePod("ns", "b", "10.0.0.2", corev1.PodRunning, nil)}, "7")
			}, []podChange{
				{ns: "ns", new: podVal{addr("10.0.0.2"), true, unique.Handle[string]{}}, hasNew: true},
				{ns: "ns", old: podVal{addr("10.0.0.1"), true, unique.Make("app=x")}, hadOld: true},
			}},
		}, 1},
		{"an object of another type is ignored", []step{
			{func(t *PodTable) error { return t.Add(&corev1.Service{}) }, nil},
		}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tbl := NewPodTable(nil)
			var mu sync.Mutex
			var got []podChange
			stop := tbl.subscribe(func(c podChange) { mu.Lock(); got = append(got, c); mu.Unlock() })
			defer stop()
			for i, s := range tc.steps {
				got = nil
				if err := s.do(tbl); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if len(got) != len(s.want) {
					t.Fatalf("step %d: changes %+v, want %+v", i, got, s.want)
				}
				for j := range got {
					if got[j] != s.want[j] {
						t.Errorf("step %d change %d: %+v, want %+v", i, j, got[j], s.want[j])
					}
				}
			}
			if tbl.Len() != tc.len {
				t.Errorf("Len %d, want %d", tbl.Len(), tc.len)
			}
		})
	}
}

// TestPodTableSubscribeAndSync: a subscriber first gets every pod held;
// the table is synced after Replace (a reflector's list) or MarkSynced;
// NewPodTable makes it the store's.
func TestPodTableSubscribeAndSync(t *testing.T) {
	store := cluster.NewStore()
	tbl := NewPodTable(store)
	if PodTableOf(store) != tbl || PodTableOf(cluster.NewStore()) != nil {
		t.Fatal("PodTableOf does not find the table made for the store, or finds one for another store")
	}
	select {
	case <-tbl.Synced():
		t.Fatal("synced before any list")
	default:
	}
	if err := tbl.Replace([]any{tablePod("ns", "a", "10.0.0.1", corev1.PodRunning, nil), tablePod("ns", "b", "10.0.0.2", corev1.PodRunning, nil)}, "1"); err != nil {
		t.Fatal(err)
	}
	<-tbl.Synced()
	n := 0
	stop := tbl.subscribe(func(c podChange) {
		if !c.hasNew || c.hadOld {
			t.Errorf("initial change %+v, want an addition", c)
		}
		n++
	})
	stop()
	if n != 2 {
		t.Errorf("initial additions %d, want 2", n)
	}
	_ = tbl.Add(tablePod("ns", "c", "10.0.0.3", corev1.PodRunning, nil))
	if n != 2 {
		t.Error("a stopped subscription still gets changes")
	}
}
