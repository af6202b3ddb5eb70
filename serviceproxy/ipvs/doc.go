// Package ipvs owns Switchboard's IPVS proxy mode: kube-proxy's
// pkg/proxy/ipvs on the serviceproxy.State, registered as mode "ipvs".
//
// # What it programs
//
//   - IPVS virtual servers through netlink (github.com/moby/ipvs, the
//     library kube-proxy uses): one per cluster IP, external IP and
//     load-balancer IP and port, and one per node IP and NodePort. The
//     scheduler is Config.Scheduler ("rr" by default; "mh" adds the
//     source-hash flag as upstream); sessionAffinity ClientIP makes the
//     service persistent with the affinity timeout. Real servers are the
//     endpoints serviceproxy.CategorizeEndpoints picks (ready ones, else
//     serving-terminating ones, narrowed by topology), with weight 1;
//     for the Local policies the node's local endpoints, falling back to
//     the cluster endpoints when there is none (upstream's syncEndpoint,
//     "Allow access from local PODs even if no local endpoints exist").
//     A real server that is no longer wanted keeps serving its open
//     connections with weight 0 until they end, then is deleted;
//     UDP and SCTP ones are deleted at once ("existing connections will
//     be deleted on the next packet because sysctlExpireNoDestConn=1"):
//     upstream's graceful termination.
//   - The dummy link kube-ipvs0, holding every cluster IP and every
//     external and load-balancer IP that is not one of the node's own
//     addresses (as /32 and /128), so that the node accepts packets to
//     them and IPVS sees them in LOCAL_IN.
//   - The ipsets of upstream (KUBE-LOOP-BACK hash:ip,port,ip,
//     KUBE-CLUSTER-IP hash:ip,port, KUBE-EXTERNAL-IP[-LOCAL],
//     KUBE-LOAD-BALANCER[-LOCAL|-FW], KUBE-LOAD-BALANCER-SOURCE-IP/-CIDR,
//     KUBE-NODE-PORT[-LOCAL]-TCP/-UDP bitmap:port,
//     KUBE-NODE-PORT[-LOCAL]-SCTP-HASH, KUBE-HEALTH-CHECK-NODE-PORT,
//     KUBE-IPVS-IPS hash:ip; IPv6 ones named KUBE-6-...), with one
//     "ipset restore" per sync.
//   - The iptables rules of IPVS mode, with one iptables-restore
//     --noflush per family: nat KUBE-SERVICES (localhost RETURN, the
//     KUBE-LOAD-BALANCER jump, KUBE-MARK-MASQ for cluster IPs from
//     outside the cluster CIDR — or from a service IP without one, or all
//     with MasqueradeAll —, external IP masquerade and ACCEPTs, the
//     KUBE-NODE-PORT tail, ACCEPT of IPVS traffic), KUBE-NODE-PORT (RETURN
//     for Local policy NodePorts, else KUBE-MARK-MASQ), KUBE-LOAD-BALANCER,
//     KUBE-POSTROUTING (hairpin MASQUERADE of KUBE-LOOP-BACK, MASQUERADE
//     of marked packets), KUBE-MARK-MASQ; filter KUBE-FORWARD,
//     KUBE-NODE-PORT (health check node ports), KUBE-PROXY-FIREWALL and
//     KUBE-SOURCE-RANGES-FIREWALL (loadBalancerSourceRanges),
//     KUBE-IPVS-FILTER (REJECT of new connections to a service address on
//     a port no service has, kubernetes issue 72236) and
//     KUBE-IPVS-OUT-FILTER (the node kept from a load-balancer IP whose
//     source ranges leave it out). The jumps from the built-in chains
//     are inserted by the same restore when missing.
//
// A service without usable endpoints has its virtual server without real
// servers: IPVS answers a new connection with ICMP port unreachable at
// once (ip_vs_leave), so clients are refused, not left waiting.
//
// # How it applies
//
// Sync acts on the network namespace of the calling thread (run it
// inside the namespace it must program, e.g. in testnet's Host.Do);
// ipset(8), iptables-restore and conntrack(8) are started from that
// thread. First it checks that the kernel has IPVS (the "IPVS" generic
// netlink family) and creates kube-ipvs0: without them it fails at once,
// changing nothing, with an error wrapping ErrNoIPVS ("kernel has no IPVS
// (ip_vs) module") or ErrNoDummy ("no dummy link type"). Probe checks
// both in a throwaway namespace. New never fails for that reason (it
// touches nothing), and Cleanup works on any kernel.
//
// A full sync (State.Full, the first one, after a failure, or when a
// parameter changed: node name, zone, node or host addresses, cluster
// CIDRs) sets upstream's sysctls (net.ipv4.vs.conntrack,
// expire_nodest_conn, expire_quiescent_template, ip_forward; arp_ignore
// and arp_announce with StrictARP), reads "ipset list -t" and
// iptables-save, writes every set and compares with the kernel's whole
// IPVS table. A partial sync rewrites only the sets whose members
// changed, skips iptables-restore when the rules are the same, and
// touches only the virtual servers that differ from the last sync. Sets
// that exist are rebuilt in a temporary set (SB-IPVS-TMP-<family>-<n>)
// and swapped in, all swaps after all additions: a failed restore leaves
// the live sets as they were. A failed iptables-restore changes nothing
// of its family and is counted in
// kubeproxy_sync_proxy_rules_iptables_restore_failures_total. IPVS
// changes are made service by service; errors are collected, returned,
// and the next sync is full. After a successful sync, conntrack entries
// of stale UDP endpoints and services are deleted (the iptables mode's
// clean-up, shared).
//
// Render (serviceproxy.DryRunner) prints what a first Sync of the state
// would apply, in three sections: "# ipvsadm -S -n", "# ipset restore",
// "# iptables-restore" (and "# ip6tables-restore").
//
// Differences from upstream, without effect on forwarding: ipsets are
// written with "ipset restore" (temporary set and swap) rather than one
// ipset command per entry; maxelem grows past 65536 for sets that need
// it; graceful-termination checks run at each sync rather than every
// minute from a goroutine; a real server wanted again gets weight 1 back
// instead of being deleted and re-added; IPVS services with a firewall
// mark are left alone; the chains shared with the iptables mode are
// removed by Cleanup only where this mode's own chains show it ran.
// moby/ipvs runs "modprobe -va ip_vs" once per process when a handle is
// opened (only after the IPVS family was found).
//
// This package owns serviceproxy/ipvs only. It touches nothing but the
// IPVS table, kube-ipvs0, the sets and chains it names, the sysctls
// above and UDP conntrack entries of service ports, in the namespace it
// runs in.
package ipvs
