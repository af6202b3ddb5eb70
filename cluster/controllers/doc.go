// Package controllers owns the standalone control plane of a Switchboard
// node: the controllers that kube-controller-manager and kube-scheduler run
// in a real cluster, re-created on the cluster.Store, plus the Service
// ClusterIP/NodePort allocator that the API server runs on every write.
//
//   - Allocator (allocator.go) is an admission step (cluster.AdmitFunc): it
//     gives Services their cluster IP from the service CIDR and their node
//     ports from the node-port range, with the rules and error messages of
//     the API server's ipallocator and portallocator.
//   - Manager (manager.go) runs level-triggered controllers, each a client-go
//     workqueue fed by store subscriptions and syncing one key at a time from
//     store reads: the scheduler, the ReplicaSet, Deployment, EndpointSlice,
//     garbage-collector and Namespace controllers.
//
// What it must not touch: it never writes data planes (proxies, DNS,
// processes) and never reads manifests; it only reads and writes objects in
// the store, like any other API client. The Allocator runs under the store's
// lock, so it never calls the store. Pod status belongs to the node
// (kubelet-lite): the controllers only write the PodScheduled condition.
//
// Namespaces default, kube-system, kube-public and kube-node-lease must not
// be deleted (the API server's NamespaceLifecycle admission refuses it);
// refusing that is an admission rule for the component that validates
// writes, not for the Namespace controller here, which simply empties and
// removes any namespace that is deleted.
package controllers
