package controllers

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/cluster"
)

// "Background cascading deletion: the API server deletes the owner, the
// garbage collector deletes the dependents": Deployment -> ReplicaSet ->
// Pods, and Service -> EndpointSlices.
func TestGarbageCollectorCascade(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	startKubelet(t, env.store, "node-1")
	create(t, env.store, deployment("default", "web", 3, appsv1.DeploymentStrategy{}))
	create(t, env.store, svc("default", "web"))
	waitComplete(t, env.store, "default", "web", "v1")
	eventually(t, "endpoint slice", func() (bool, string) { return len(slicesOf(env.store, "default", "web")) == 1, "" })

	if err := env.store.Delete(cluster.KindDeployment, "default", "web", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ReplicaSets and pods gone", func() (bool, string) {
		rss := cluster.List[*appsv1.ReplicaSet](env.store, "default", nil)
		pods := listPods(env.store, "default", nil)
		return len(rss) == 0 && len(pods) == 0, fmt.Sprintf("%d ReplicaSets, %d pods", len(rss), len(pods))
	})
	if err := env.store.Delete(cluster.KindService, "default", "web", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "slices gone", func() (bool, string) {
		n := len(cluster.List[*discoveryv1.EndpointSlice](env.store, "default", nil))
		return n == 0, fmt.Sprintf("%d slices", n)
	})
}

func ownerRef(kind, apiVersion, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid}
}

// Objects found at start are checked too: "an object whose owners are
// all gone is deleted"; dangling references next to a live owner are
// removed; owners of kinds the store does not hold are not judged.
func TestGarbageCollectorAtStart(t *testing.T) {
	var live *corev1.ConfigMap
	env := newEnv(t, testConfig(), func(s *cluster.Store) {
		live = create(t, s, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "owner"}}).(*corev1.ConfigMap)
		mk := func(name string, refs ...metav1.OwnerReference) {
			create(t, s, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, OwnerReferences: refs}})
		}
		mk("orphaned", ownerRef("Deployment", "apps/v1", "gone", "uid-gone"))
		mk("wrong-uid", ownerRef("ConfigMap", "v1", "owner", "uid-of-an-older-owner"))
		mk("half", ownerRef("ConfigMap", "v1", "owner", live.UID), ownerRef("Deployment", "apps/v1", "gone", "uid-gone"))
		mk("unknown-kind", ownerRef("Widget", "example.com/v1", "w", "uid-w"))
		mk("kept", ownerRef("ConfigMap", "v1", "owner", live.UID))
	})
	gone := func(name string) bool {
		_, err := cluster.Get[*corev1.ConfigMap](env.store, "default", name)
		return apierrors.IsNotFound(err)
	}
	eventually(t, "orphans deleted", func() (bool, string) {
		return gone("orphaned") && gone("wrong-uid"), fmt.Sprintf("orphaned gone %v, wrong-uid gone %v", gone("orphaned"), gone("wrong-uid"))
	})
	eventually(t, "dangling reference removed", func() (bool, string) {
		cm, err := cluster.Get[*corev1.ConfigMap](env.store, "default", "half")
		if err != nil {
			return false, err.Error()
		}
		return len(cm.OwnerReferences) == 1 && cm.OwnerReferences[0].UID == live.UID, fmt.Sprintf("%+v", cm.OwnerReferences)
	})
	// The Manager has synced: every object present at start was looked at.
	for _, name := range []string{"unknown-kind", "kept", "owner"} {
		if gone(name) {
			t.Errorf("%s was deleted", name)
		}
	}
}
