// Package manifests is the manifest source of a standalone node: it reads
// Kubernetes manifests from files and directories and keeps the
// cluster.Store in step with them, the way `kubectl apply -f DIR --prune`
// would against an API server, and watches them for changes.
//
// Reading: .yaml, .yml and .json files (recursively in directories;
// hidden files and directories are skipped; a file named explicitly is
// read whatever its extension), multi-document YAML ("---"), JSON objects
// or streams of them, and List documents (kind: List, or e.g. PodList)
// whose items count as documents of their own. Decoding is strict, into the
// real k8s.io/api types: unknown or duplicate fields and values of the
// wrong type are errors naming the field path and the line. Documents of a
// kind the store does not hold are logged once per kind and skipped.
//
// Applying: each good document is applied to the store (create or
// update), in cluster.Kinds order. The store's admission chain (defaults
// and validation, cluster/admission) decides what is valid; its errors are
// reported per document and field. Namespaced objects without a namespace
// go to "default", and a namespace that the manifests use but that
// neither exists nor is defined is created, since a one-host cluster has
// no one else to create it.
//
// Errors never stop the rest: one bad document is rejected alone and
// everything else is applied. When a document that was good turns bad, the
// last good version of its object stays in force (it is never deleted
// because its new version is bad). Of two documents defining the same
// object, the first in reading order (paths as given, files in lexical
// order, documents in file order) wins and the second is reported with the
// place of the first.
//
// Watching: a changed file is re-read after changes settle (debounced;
// editors' rename-saves and new subdirectories are handled). Objects whose
// documents changed are applied again; objects whose documents or files are
// gone are deleted. Between reloads the source keeps a hash of each file
// and of each document, not the decoded objects: a file whose content is
// unchanged is not decoded again, and a file is decoded again only when one
// of its objects must be applied (its document changed, or the object is
// missing from the store). A document the store refused is tried again
// when its content changes and at full reloads (the load, the watch's
// start), its problems standing in between. A Pod whose spec changed (pod specs are immutable) is
// deleted and created again once the old one is gone (the node stops it
// gracefully; the wait is bounded). Only objects this source created are
// ever deleted: objects created by others (controllers, the local API) are
// never touched, and an object deleted by someone else while its document
// is unchanged is created again at the next reload.
//
// This package owns reading manifests and applying them to the store. It
// does not validate (cluster/admission does, inside the store), run
// anything, or write status.
package manifests
