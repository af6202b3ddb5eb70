// Package kubee2e holds end-to-end tests of cluster mode (issue 7) with
// real connections: the built switchboard binary runs kube-proxy, dns and
// ingress inside a throwaway node network namespace (internal/testnet)
// against a real kube-apiserver and etcd (internal/kubetest) that run on
// the host's loopback and are reached from the node namespace through a
// relay (kubetest's Cluster.KubeconfigVia); objects are created and
// deleted with kubectl, and pods, a client pod and an outside client send
// real TCP, HTTP and DNS traffic.
//
// It holds tests only. It owns nothing outside its namespaces and
// temporary files, never touches the root namespace's links, routes,
// nftables or iptables, and does not edit the components it runs (dns/,
// ingress/, serviceproxy/).
package kubee2e
