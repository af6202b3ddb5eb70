// Package kubernetes is the DNS server's `kubernetes` plugin: it answers the
// Kubernetes DNS-Based Service Discovery specification (schema 1.1.0) for
// the zones it is given, the way CoreDNS 1.14's kubernetes plugin does,
// from the objects of a cluster.Store (Services, EndpointSlices,
// Namespaces and, with `pods verified`, Pods).
//
// It owns the Corefile parsing of the directive (setup.go), a record index
// built from store subscriptions and published by atomic swaps of
// copy-on-write shards so that lookups take no lock (index.go), the query
// handler (handler.go, lookup.go, reverse.go), the versions it reports to
// a cache in front of it (version.go, plugin.Versioned), its metric
// (metrics.go), the store transforms that keep only what it reads for a
// store that serves DNS alone (trim.go), the compact table that holds the
// pods of such a store in its place (pods.go, PodTable) and its README.
// It never writes to the store and never touches other plugins; it reads
// the store only through Subscribe.
package kubernetes
