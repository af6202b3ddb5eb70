// Package iptables owns Switchboard's iptables proxy mode: kube-proxy's
// pkg/proxy/iptables (the KUBE-SERVICES / KUBE-SVC-* / KUBE-SEP-* layout)
// on the serviceproxy.State, registered as mode "iptables".
//
// # What it writes
//
// Per sync and per IP family, one iptables-restore --noflush --counters
// input (ip6tables-restore for IPv6) with a *filter and a *nat table,
// rule for rule as upstream's syncProxyRules writes them:
//
//   - filter: KUBE-SERVICES (REJECT for service ports without any usable
//     endpoint, DROP for Local internal policy without local endpoints),
//     KUBE-EXTERNAL-SERVICES (the same for external IPs, load-balancer IPs
//     and NodePorts), KUBE-NODEPORTS (healthCheckNodePort ACCEPT),
//     KUBE-PROXY-FIREWALL (loadBalancerSourceRanges drops), KUBE-FORWARD
//     (INVALID drop unless nf_conntrack_tcp_be_liberal, masquerade-marked
//     and established traffic accepted) and, with localhost NodePorts,
//     kubelet's KUBE-FIREWALL anti-martian rule;
//   - nat: KUBE-SERVICES (cluster IP, external IP and load-balancer IP
//     captures, then the NodePort tail call), KUBE-NODEPORTS,
//     KUBE-POSTROUTING (MASQUERADE --random-fully of marked packets),
//     KUBE-MARK-MASQ, and per service port KUBE-SVC-<hash> (Cluster
//     policy), KUBE-SVL-<hash> (Local policy), KUBE-EXT-<hash> (external
//     traffic, with the short-circuit of pod and node traffic under
//     externalTrafficPolicy Local), KUBE-FW-<hash> (source ranges) and one
//     KUBE-SEP-<hash> per endpoint (hairpin masquerade "-s <endpoint>",
//     recent --set for ClientIP affinity, DNAT).
//
// Chain names are upstream's: base32(sha256(servicePortName + protocol))
// truncated to 16 characters (plus the endpoint for KUBE-SEP), so they
// equal the names kube-proxy would use for the same service. Endpoints
// are chosen with "-m statistic --mode random --probability 1/n" (printed
// with %0.10f, as upstream), ClientIP affinity with "-m recent --rcheck
// --seconds <timeout> --reap". Which endpoints are used is
// serviceproxy.CategorizeEndpoints (ready ones, else serving-terminating
// ones, topology). Above 1,000 endpoints the per-endpoint comments are
// dropped ("large cluster mode").
//
// Service ports are written sorted by name (upstream iterates a map), so
// the same State always renders the same bytes; Render returns them.
//
// # How it applies
//
// Sync acts on the network namespace of the calling thread: run it
// inside the namespace it must program (testnet's Host.Do locks the
// goroutine's thread there; iptables-restore, iptables-save and
// conntrack are started from that thread and inherit its namespace). It
// never enters or leaves a namespace itself.
//
//   - A full sync (State.Full, the first sync, after a failure, or when
//     a setting that shapes every chain changed: node name or zone, node
//     IPs, cluster CIDRs, large cluster mode) first reads iptables-save
//     once: missing jumps from the built-in chains (INPUT, FORWARD,
//     OUTPUT, PREROUTING, POSTROUTING; upstream's EnsureRule(Prepend))
//     are inserted ("-I") by the same restore, and stale KUBE-SVC/SVL/
//     EXT/FW/SEP chains left by anyone are flushed and deleted. It also
//     sets net.ipv4.conf.all.route_localnet=1 when localhost NodePorts
//     are on (upstream does so at start-up) and reads
//     net.netfilter.nf_conntrack_tcp_be_liberal.
//   - A partial sync rewrites the top-level chains and only the chains
//     of the service ports listed in State.Changed; the other service
//     chains stay as they are in the kernel (the restore does not mention
//     them), and chains the previous sync left active but that are no
//     longer needed are deleted. The result equals a full sync of the
//     same State (tested).
//   - Each family is one iptables-restore call, atomic per table: when
//     it fails nothing of it is in force, the previous rules stay, the
//     failure is counted in kubeproxy_sync_proxy_rules_iptables_restore_
//     failures_total (and ..._partial_restore_failures_total for a
//     partial sync), the error (with the offending lines) is returned and
//     the next sync is a full one.
//   - After a successful sync, conntrack entries of UDP service ports
//     towards removed endpoints, and of UDP service ports that gained
//     their first endpoint, are deleted with conntrack -D (in the same
//     namespace), as upstream's conntrack clean-up.
//
// Backends: iptables-nft (iptables-nft-restore/-save: rules in nf_tables
// tables "ip filter" / "ip nat" that "nft list ruleset" also shows) or
// iptables-legacy (x_tables). Config.Backend (kube-proxy
// --iptables-backend) is auto, nft or legacy; auto (the default) decides
// on the first sync in the namespace it programs, as kube-proxy's images
// do with iptables-wrapper (DetectBackend): kubelet's hint chains
// (KUBE-IPTABLES-HINT, KUBE-KUBELET-CANARY) in iptables-nft's mangle
// table, then in iptables-legacy's tables; else the backend holding more
// rules (which also finds our own rules after a restart); else, in a
// fresh namespace with no rules at all, nft, the wrapper's default. That
// default is chosen even though iptables-nft's restore is far slower at
// scale (measured: 1,000 services x 10 endpoints 5.5 s against 0.24 s
// for legacy; 3,000: 6.6 min against 1.27 s; 10,000 legacy 9.3 s): on a
// node whose firewall is nftables, legacy rules would be evaluated apart
// from it (packets traverse both), which is the breakage the wrapper
// exists to avoid; large clusters should use --iptables-backend legacy
// or the nftables mode. Do not mix both in one namespace. Cleanup under
// auto before any sync (--cleanup) cleans both backends.
//
// Differences from upstream, all without effect on forwarding: no
// KUBE-PROXY-CANARY monitor (the core's periodic full sync re-creates
// flushed rules); no nfacct counters on the INVALID-drop and localhost
// NodePort rules (this kernel has no nfacct objects; upstream also omits
// the matches then); the jumps from the built-in chains are inserted by
// the restore rather than by separate iptables calls; stale chains are
// found from the previous sync in partial syncs (upstream reads
// iptables-save on every sync below 1,000 endpoints); only the first
// cluster CIDR of a family is the local-traffic detector (as upstream's
// --cluster-cidr detector); Cleanup also removes KUBE-FIREWALL (upstream
// leaves it to kubelet, which Switchboard replaces).
//
// This package owns serviceproxy/iptables only. It touches nothing but
// the iptables rules and chains it names, two sysctls of the namespace it
// runs in and that namespace's UDP conntrack entries of service ports.
package iptables
