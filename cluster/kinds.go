package cluster

import (
	"fmt"
	"reflect"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Object is any API object the store holds: a k8s.io/api type with
// ObjectMeta and TypeMeta (the same contract as controller-runtime's
// client.Object).
type Object interface {
	metav1.Object
	runtime.Object
}

// Kind describes one kind the store holds: its group/version/kind, its
// resource name as it appears in API paths, and constructors.
type Kind struct {
	GVK        schema.GroupVersionKind
	Resource   string   // plural lower-case, as in /api/v1/namespaces/NS/pods
	ShortNames []string // as kubectl knows them: po, svc, deploy, ...
	Namespaced bool
	new        func() Object
	newList    func() runtime.Object
}

// Name is the kind's name, e.g. "Pod".
func (k *Kind) Name() string { return k.GVK.Kind }

// New returns a new empty object of the kind with TypeMeta filled in.
func (k *Kind) New() Object {
	o := k.new()
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	return o
}

// NewList returns an empty list object of the kind (e.g. *corev1.PodList)
// with TypeMeta filled in.
func (k *Kind) NewList() runtime.Object {
	l := k.newList()
	l.GetObjectKind().SetGroupVersionKind(k.GVK.GroupVersion().WithKind(k.GVK.Kind + "List"))
	return l
}

// APIPath is the path prefix of the kind's group/version: "/api/v1" for the
// core group, "/apis/GROUP/VERSION" otherwise.
func (k *Kind) APIPath() string {
	if k.GVK.Group == "" {
		return "/api/" + k.GVK.Version
	}
	return "/apis/" + k.GVK.Group + "/" + k.GVK.Version
}

func kind(group, version, name, resource string, namespaced bool, short []string, newObj func() Object, newList func() runtime.Object) *Kind {
	return &Kind{
		GVK:        schema.GroupVersionKind{Group: group, Version: version, Kind: name},
		Resource:   resource,
		ShortNames: short,
		Namespaced: namespaced,
		new:        newObj,
		newList:    newList,
	}
}

// The kinds the store holds. Their order is the order in which a manifest
// source applies a batch (namespaces and configuration before workloads),
// as kubectl apply users expect.
var (
	KindNamespace      = kind("", "v1", "Namespace", "namespaces", false, []string{"ns"}, func() Object { return &corev1.Namespace{} }, func() runtime.Object { return &corev1.NamespaceList{} })
	KindServiceAccount = kind("", "v1", "ServiceAccount", "serviceaccounts", true, []string{"sa"}, func() Object { return &corev1.ServiceAccount{} }, func() runtime.Object { return &corev1.ServiceAccountList{} })
	KindConfigMap      = kind("", "v1", "ConfigMap", "configmaps", true, []string{"cm"}, func() Object { return &corev1.ConfigMap{} }, func() runtime.Object { return &corev1.ConfigMapList{} })
	KindSecret         = kind("", "v1", "Secret", "secrets", true, nil, func() Object { return &corev1.Secret{} }, func() runtime.Object { return &corev1.SecretList{} })
	KindNode           = kind("", "v1", "Node", "nodes", false, []string{"no"}, func() Object { return &corev1.Node{} }, func() runtime.Object { return &corev1.NodeList{} })
	KindService        = kind("", "v1", "Service", "services", true, []string{"svc"}, func() Object { return &corev1.Service{} }, func() runtime.Object { return &corev1.ServiceList{} })
	KindEndpointSlice  = kind("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, nil, func() Object { return &discoveryv1.EndpointSlice{} }, func() runtime.Object { return &discoveryv1.EndpointSliceList{} })
	KindDeployment     = kind("apps", "v1", "Deployment", "deployments", true, []string{"deploy"}, func() Object { return &appsv1.Deployment{} }, func() runtime.Object { return &appsv1.DeploymentList{} })
	KindReplicaSet     = kind("apps", "v1", "ReplicaSet", "replicasets", true, []string{"rs"}, func() Object { return &appsv1.ReplicaSet{} }, func() runtime.Object { return &appsv1.ReplicaSetList{} })
	KindPod            = kind("", "v1", "Pod", "pods", true, []string{"po"}, func() Object { return &corev1.Pod{} }, func() runtime.Object { return &corev1.PodList{} })
	KindIngressClass   = kind("networking.k8s.io", "v1", "IngressClass", "ingressclasses", false, nil, func() Object { return &networkingv1.IngressClass{} }, func() runtime.Object { return &networkingv1.IngressClassList{} })
	KindIngress        = kind("networking.k8s.io", "v1", "Ingress", "ingresses", true, []string{"ing"}, func() Object { return &networkingv1.Ingress{} }, func() runtime.Object { return &networkingv1.IngressList{} })
	KindNetworkPolicy  = kind("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, []string{"netpol"}, func() Object { return &networkingv1.NetworkPolicy{} }, func() runtime.Object { return &networkingv1.NetworkPolicyList{} })
	KindEvent          = kind("", "v1", "Event", "events", true, []string{"ev"}, func() Object { return &corev1.Event{} }, func() runtime.Object { return &corev1.EventList{} })
)

// Kinds lists every kind the store holds, in apply order.
var Kinds = []*Kind{
	KindNamespace, KindServiceAccount, KindConfigMap, KindSecret, KindNode,
	KindService, KindEndpointSlice, KindIngressClass, KindIngress,
	KindNetworkPolicy, KindDeployment, KindReplicaSet, KindPod, KindEvent,
}

var kindByType = func() map[reflect.Type]*Kind {
	m := map[reflect.Type]*Kind{}
	for _, k := range Kinds {
		m[reflect.TypeOf(k.new())] = k
	}
	return m
}()

// KindOf returns the kind of a typed object, or nil when the store does not
// hold objects of its Go type.
func KindOf(obj runtime.Object) *Kind {
	return kindByType[reflect.TypeOf(obj)]
}

// LookupGVK finds a kind by apiVersion and kind as written in a manifest.
func LookupGVK(apiVersion, kindName string) *Kind {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil
	}
	for _, k := range Kinds {
		if k.GVK.Group == gv.Group && k.GVK.Version == gv.Version && k.GVK.Kind == kindName {
			return k
		}
	}
	return nil
}

// LookupResource finds a kind the way kubectl resolves what a user types:
// the resource name (pods), its singular (pod), a short name (po) or the
// kind name in any case (Pod), optionally qualified with a group
// (deployments.apps).
func LookupResource(name string) (*Kind, error) {
	n := strings.ToLower(name)
	group := ""
	if i := strings.IndexByte(n, '.'); i >= 0 {
		n, group = n[:i], n[i+1:]
	}
	for _, k := range Kinds {
		if group != "" && k.GVK.Group != group {
			continue
		}
		if n == k.Resource || n == strings.ToLower(k.GVK.Kind) {
			return k, nil
		}
		for _, s := range k.ShortNames {
			if n == s {
				return k, nil
			}
		}
	}
	return nil, fmt.Errorf("the server doesn't have a resource type %q", name)
}

// LookupAPIResource finds a kind by group, version and resource as they
// appear in an API path.
func LookupAPIResource(group, version, resource string) *Kind {
	for _, k := range Kinds {
		if k.GVK.Group == group && k.GVK.Version == version && k.Resource == resource {
			return k
		}
	}
	return nil
}

// Key names an object inside its kind: "namespace/name", or "name" for
// cluster-scoped kinds, as client-go's cache.MetaNamespaceKeyFunc does.
func Key(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// KeyOf is Key for an object.
func KeyOf(obj metav1.Object) string { return Key(obj.GetNamespace(), obj.GetName()) }

// Describe names an object for messages: "Service default/web".
func Describe(obj Object) string {
	k := KindOf(obj)
	name := "object"
	if k != nil {
		name = k.Name()
	}
	return name + " " + KeyOf(obj)
}
