// Package userspace owns Switchboard's userspace service proxy mode: Go TCP
// and UDP proxies listening on every service address and port, modelled on
// kube-proxy's removed userspace proxier (pkg/proxy/userspace in
// Kubernetes ≤1.25), in modern Go. It needs no root in the loopback
// sandbox, where service IPs are 127.0.0.0/8 addresses it can bind
// directly.
//
// What it does, per sync of a serviceproxy.State:
//
//   - one listener per (cluster IP, port, protocol); NodePorts on each of
//     State.Node.IPs; externalIPs and load-balancer ingress IPs (when
//     they are not local and no address may be added, they are skipped,
//     logged once);
//   - cluster IPs, external IPs and load-balancer ingress IPs that are not
//     local are added to the loopback interface
//     as /32 (/128) addresses tagged with the address protocol AddrProto
//     (Config.Addresses: by default only when the proxier runs in another
//     network namespace than the process's own, never on the host), and
//     removed when no listener needs them and no connection accepted on
//     them is open, and on Cleanup (the kernel here has no dummy link
//     type, so kube-proxy's IPVS-style kube-ipvs0 is lo);
//   - TCP: accept, pick an endpoint (round robin over the usable endpoints
//     of serviceproxy.CategorizeEndpoints, ClientIP affinity with its
//     timeout), dial with a short timeout (250 ms, doubling up to 2 s, as
//     upstream's endpointDialTimeout), try the next endpoint on failure
//     until every one was tried, then splice both ways with half-close;
//     without a usable endpoint the connection is reset at once;
//   - UDP: one session per client address and port, relayed through a
//     socket connected to the endpoint; replies leave from the service
//     address; a session ends after Config.UDPIdleTimeout (default 30 s,
//     the kernel's nf_conntrack_udp_timeout; upstream's --udp-timeout
//     default of 250 ms broke request/response protocols with slow
//     servers), when its endpoint is removed (as kube-proxy flushes
//     conntrack entries of stale UDP endpoints), or when the endpoint
//     answers with ICMP port unreachable;
//   - a sync closes listeners that are no longer wanted, but established
//     TCP connections keep running until they end, also when their
//     endpoint or their whole service was removed; endpoint changes apply
//     to new connections only.
//
// Ports below 1024 need root or CAP_NET_BIND_SERVICE (or a lowered
// net.ipv4.ip_unprivileged_port_start): such a listener is not opened, is
// logged once per service port, counted in
// kubeproxy_userspace_bind_failures_total and retried on every sync. It is
// never silently moved to another port.
//
// Metrics (subsystem "userspace" of kube-proxy's "kubeproxy" namespace):
//
//	kubeproxy_userspace_connections_total{service,protocol}   TCP connections proxied and UDP sessions opened
//	kubeproxy_userspace_connections_active{service,protocol}  TCP connections and UDP sessions open now
//	kubeproxy_userspace_dial_failures_total{service,protocol} failed connects to an endpoint (each retry counts)
//	kubeproxy_userspace_rejected_total{service,protocol}      connections reset and datagrams dropped for want of a usable endpoint
//	kubeproxy_userspace_bind_failures_total{service,protocol,reason} listeners that could not be opened (reason permission, in_use, not_local, other)
//	kubeproxy_userspace_listeners                              listeners open now
//
// Differences from the kernel modes: a service without usable endpoints
// resets TCP connections after accepting them (the client sees a reset,
// at once, rather than a refused connect) for both kube-proxy's REJECT and
// DROP cases, and drops UDP datagrams; endpoints see the node's address as
// the client's (every connection is masqueraded, so hairpin works).
//
// The proxier works in the network namespace of the thread that calls
// its first Sync (serviceproxy.ModeConfig: "run the proxy inside the
// namespace it must program"): when that is not the process's own, a few
// goroutines locked in that namespace open its sockets and dial the
// endpoints. Call Cleanup to release them. Sync without State.Full looks
// only at the service ports in Changed and Removed: one change costs about
// the same at 100 and at 10,000 services. Render (serviceproxy.DryRunner)
// prints the listeners a state needs.
//
// The package owns serviceproxy/userspace only; it never touches rules,
// routes or addresses other than the tagged loopback addresses it added.
package userspace
