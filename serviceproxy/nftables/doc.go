// Package nftables is Switchboard's kube-proxy nftables mode: a
// serviceproxy.Backend (registered as mode "nftables") that renders the
// whole desired serviceproxy.State into tables of our own, "ip switchboard"
// and "ip6 switchboard", and applies each sync as one netlink transaction
// (all or nothing). It owns those two tables and the UDP conntrack entries
// it flushes; it never touches other tables, routes, links or pods.
//
// # Behaviour
//
// kube-proxy's nftables mode (pkg/proxy/nftables/proxier.go): cluster IPs,
// NodePorts (on the node IPs, or every local address but loopback when none
// are given), external IPs, load-balancer VIPs with
// loadBalancerSourceRanges, ClientIP session affinity with its timeout,
// externalTrafficPolicy and internalTrafficPolicy Local (DROP when there is
// no local endpoint, with the short-circuit of pod and node traffic),
// serving-terminating endpoints when none is ready (CategorizeEndpoints),
// hairpin masquerade, masquerade of traffic from outside the cluster CIDRs,
// REJECT (ICMP port unreachable: connection refused at once) for services
// without endpoints and for undefined ports of cluster IPs, the
// mark-for-masquerade / masquerading chains, and the flush of stale UDP
// conntrack entries. TCP, UDP and SCTP.
//
// # Layout
//
// The base chains, the dispatch maps and the "no endpoints" maps are
// kube-proxy's (service-ips, service-nodeports, no-endpoint-services,
// no-endpoint-nodeports, cluster-ips, nodeport-ips, the filter-* and nat-*
// chains). What differs is the load balancing: kube-proxy jumps from
// service-ips to a chain per service, which picks a chain per endpoint with
// an anonymous "numgen random mod N vmap", which DNATs. At 10,000 services x
// 10 endpoints that is 110,000 chains and 10,000 anonymous maps: `nft -f`
// of it took 86 s here (a chain per service with an anonymous numgen DNAT
// map and no endpoint chains: 11.5 s). Here the services of one shape share
// one chain, and endpoints are elements of one map:
//
//	service-ips:       10.96.0.10 . tcp . 80 : goto svc-ip-3
//	chain svc-ip-3:    ip saddr != @cluster-cidrs jump mark-for-masquerade
//	                   dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @service-endpoints
//	service-endpoints: 10.96.0.10 . tcp . 80 . 0 : 10.244.0.5 . 8080, ... . 1 : ..., ... . 2 : ...
//
// so there is one chain per distinct endpoint count and policy (svc-ip-N,
// ext-cluster-N, ext-local-L-C, ext-shortcut-C, nodeport-...), and per
// packet two hash lookups whatever the number of services. Hairpin
// masquerade is one lookup of (saddr . daddr) in the set @hairpin after
// DNAT; loadBalancerSourceRanges is an interval set (VIP . proto . port .
// source range) in firewall-check. Services with ClientIP affinity keep
// kube-proxy's own layout (a chain per endpoint with an "update @affinity-X
// { ip saddr }" set with the timeout), since the choice must be remembered
// per endpoint; they are few.
//
// Measured in a throwaway namespace on this 2-core machine, 10,000 services
// x 10 endpoints: the flat layout loads in 0.47 s through netlink, in
// 1.7 s with `nft -f` of Render's script (elements batched 1,000 a line)
// and in 3.1 s through knftables (one element a line); a whole first
// Sync, building the table from the State included, takes 0.81 s, a
// full resync 0.85 s, one added service 4.9 ms (BenchmarkSync).
//
// # Library
//
// Transactions are sent with github.com/google/nftables (netlink), the
// faster of the two libraries issue 4 names. BenchmarkApplyLibraries
// applies the same transactions through both in fresh namespaces (and
// TestKnftablesAppliesTheSameTable shows that both leave the same table);
// measured here (3 runs each):
//
//	                                   google/nftables   sigs.k8s.io/knftables   ratio
//	1,000 x 10, full sync                       60 ms                  287 ms    4.8x
//	1,000 x 10, one added service              1.0 ms                  4.1 ms    3.9x
//	10,000 x 10, full sync                     472 ms                 3113 ms    6.6x
//	10,000 x 10, one added service             3.3 ms                  9.0 ms    2.7x
//
// knftables writes every element on a line of its own and runs `nft -f`,
// which must parse all of them; an incremental sync through it also pays
// for starting a process, which netlink does not. The same transaction
// prints as an nft script (Render, LastScript): `nft -f` of the script
// and the netlink batch give the same `nft list table`, which the tests
// check. One difference shows in the listing: the endpoint maps are
// declared with "typeof ... numgen" in the script, and with the kernel
// type "mark" for the bucket through netlink (google/nftables cannot
// write nft's typeof metadata); the kernel objects are the same.
//
// # Incremental syncs
//
// Each family's desired table is kept as elements and chains owned by the
// service ports that contribute them. A full sync rebuilds it from all
// ports and rewrites the table (the first one deletes and recreates it;
// later ones flush and refill, keeping the affinity sets' entries); an
// incremental one replaces the contributions of State.Changed and
// State.Removed and sends only the elements and chains that differ. The
// result is the same as a full render (tested).
//
// # Namespaces
//
// Sync and Cleanup act on the network namespace of the calling OS thread
// (tests call them inside ns.Do), or on Config.NetNSPath when set.
package nftables
