// Package localapi serves a node's cluster.Store over HTTP with the
// Kubernetes API's URL shapes, verbs and wire format, so that curl users
// recognise it and client-go (typed, dynamic and informer clients) and
// kubectl work against it: discovery (/api, /apis), list, get, create,
// update, patch, delete and watch of every kind in cluster.Kinds, the
// status and pods/log subresources, metav1.Status errors, and /healthz,
// /livez, /readyz, /metrics and /version.
//
// It owns only the HTTP translation. Every write goes through the
// cluster.Store (and so through its admission chain); the package keeps no
// state of its own, never changes objects behind the store's back, and
// never starts or stops pods: container logs come from a LogStreamer the
// node provides.
package localapi
