package controllers

import (
	"fmt"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

func TestNamespaceDeletion(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	k := startKubelet(t, env.store, "node-1")
	create(t, env.store, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team"}})
	create(t, env.store, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "keep"}})
	eventually(t, "namespace Active with its finalizer", func() (bool, string) {
		ns, _ := cluster.Get[*corev1.Namespace](env.store, "", "team")
		return ns.Status.Phase == corev1.NamespaceActive && slices.Contains(ns.Finalizers, "kubernetes") &&
			slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes), fmt.Sprintf("%+v %v", ns.Status, ns.Finalizers)
	})
	d := deployment("team", "web", 2, appsv1.DeploymentStrategy{})
	create(t, env.store, d)
	create(t, env.store, svc("team", "web"))
	create(t, env.store, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "cfg"}})
	create(t, env.store, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "keep", Name: "cfg"}})
	waitComplete(t, env.store, "team", "web", "v1")
	// Hold one pod's termination to see the namespace in Terminating.
	held := listPods(env.store, "team", nil)[0]
	k.holdTermination(cluster.KeyOf(held), true)

	if err := env.store.Delete(cluster.KindNamespace, "", "team", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Terminating while a pod still stops", func() (bool, string) {
		ns, err := cluster.Get[*corev1.Namespace](env.store, "", "team")
		if err != nil {
			return false, err.Error()
		}
		p, err := cluster.Get[*corev1.Pod](env.store, "team", held.Name)
		return ns.Status.Phase == corev1.NamespaceTerminating && err == nil && p.DeletionTimestamp != nil, fmt.Sprintf("phase %s", ns.Status.Phase)
	})
	k.holdTermination(cluster.KeyOf(held), false)
	eventually(t, "namespace and its content gone", func() (bool, string) {
		_, err := cluster.Get[*corev1.Namespace](env.store, "", "team")
		left := 0
		for _, kind := range cluster.Kinds {
			if kind.Namespaced && kind != cluster.KindEvent {
				objs, _ := env.store.List(kind, "team", nil)
				left += len(objs)
			}
		}
		return apierrors.IsNotFound(err) && left == 0, fmt.Sprintf("namespace err %v, %d objects left", err, left)
	})
	if _, err := cluster.Get[*corev1.ConfigMap](env.store, "keep", "cfg"); err != nil {
		t.Fatalf("another namespace's object: %v", err)
	}
}
