// Package testnet builds small, real, throwaway networks out of Linux
// network namespaces for tests that need the kernel (service proxy modes,
// probes, DNS over real sockets).
//
// One Net is one Kubernetes-like node:
//
//   - the node namespace (sbt-<id>-<nodename>): lo up, a bridge "sbbr0"
//     holding the pod CIDR's first address (the pods' gateway, 10.244.0.1
//     by default), net.ipv4.ip_forward=1, ICMP redirects off,
//     net.bridge.bridge-nf-call-iptables=1 (unless disabled), and routes
//     "dev sbbr0" for Options.ServiceCIDRs (10.96.0.0/12 and 203.0.113.0/24
//     by default) so that connections the node itself opens to a service
//     IP reach the OUTPUT hook where a proxy rewrites them. The node has no
//     default route and no link to the root namespace: nothing can leave.
//   - pod namespaces (sbt-<id>-<podname>): lo up, eth0 (a veth whose other
//     end "sbp<N>" is a bridge port with hairpin mode on), an address from
//     the pod CIDR (10.244.0.2, .3, ... in creation order) and a default
//     route via the gateway.
//   - client namespaces (sbt-<id>-<clientname>), standing for machines
//     outside the cluster: eth0 linked by its own veth pair to the node's
//     "sbc<N>", on its own /28 out of 198.51.100.0/24: client N gets
//     198.51.100.(16N+2), the node side 198.51.100.(16N+1) (a node IP, the
//     NodePort target), and the client's default route goes via the node.
//     Because the node forwards, a client can reach pod IPs directly under
//     the default routing (as behind a router that knows the pod CIDR);
//     set Options.ClientRoutes to route only some prefixes via the node.
//     The node's Host.IP is 198.51.100.1, the node side of client 0's
//     link; that link exists from New on, so the address is there even
//     before the first client is added.
//
// 203.0.113.0/24 is free for tests to use as external or load-balancer
// IPs (routed to the node by every client, and by the node onto sbbr0).
//
// All links are created inside the namespaces (the root namespace never
// sees one), and every namespace is a bind mount under /run/netns, so a
// human can "ip netns exec sbt-... sh" while a test is stopped. Clean-ups
// are registered with t.Cleanup before anything is created; they run on
// failure and on a panic in the test goroutine (Host.Do re-raises panics
// from the namespace goroutine there). Namespaces left by a killed run are
// removed by Sweep, which New calls once per process.
//
// Commands (Host.Exec, Host.ExecInput, Host.Start) are started from a
// thread inside the namespace (Host.Do), not through nsenter; the child
// inherits the namespace and nothing else (mount namespace and /sys are
// the caller's). Host.Command instead wraps the command in
// "nsenter --net=PATH --", for code that starts commands from goroutines
// of its own: goroutines started inside Do are not in the namespace.
//
// Servers (Host.ServeTCP/ServeUDP/ServeHTTP) create their sockets inside
// the namespace and listen on all its addresses: TCP greets each
// connection with "NAME\n" and then echoes; UDP answers each datagram
// with NAME from the address it was sent to; HTTP answers NAME. Sent
// ClientIPRequest (UDP) or GET /clientip (HTTP), they answer with the
// source "ip:port" they see. The Ask* and Dial* helpers create the client
// socket inside the asking host's namespace. New, AddPod, AddClient and
// the servers take a TB: a *testing.T or *testing.B, or a program's own
// implementation of the few methods used (bench/serviceproxy has one).
//
// This package owns only the namespaces it creates. It never touches the
// root namespace's links, addresses, routes, sysctls, nftables or
// iptables, and sends no traffic outside its namespaces.
package testnet
