// Package cli owns the kubectl-like commands a user types in a second
// terminal while `switchboard up` runs: get, apply, delete, describe, logs
// and exec. They talk to the node's Kubernetes-shaped local API (served on the
// unix socket <state-dir>/api.sock, or on --server, or to a real cluster
// through --kubeconfig) with client-go, and print what kubectl prints: the
// API server's table columns, kubectl's describe layout, its messages and
// its errors ("Error from server (NotFound): pods "x" not found").
//
// It owns only the client side. It never touches the cluster.Store, the
// node or the local API server directly: every read and write goes through
// the HTTP API, so the same commands work against a real API server. The
// one exception is exec (exec.go): a node has no exec endpoint, so after
// reading the pod through the API it enters the pod's namespaces on this
// host from the files the netns sandbox keeps in the node's state
// directory (package node/sandbox), as root.
package cli
