// Package proxytest is the one scenario suite every service proxy mode
// runs (issue 4, "Must show"): real servers in pod namespaces behind a
// node namespace (internal/testnet), a client namespace standing for the
// outside, the mode's Backend synced inside the node namespace, and real
// TCP, HTTP and UDP connections proving what the Kubernetes "Virtual IPs
// and Service Proxies" reference and kube-proxy's code say a proxy does.
//
// A mode's test calls
//
//	proxytest.Run(t, proxytest.Mode{
//		Name: "nftables",
//		New:  func(t *testing.T, cfg serviceproxy.ModeConfig) serviceproxy.Backend { ... },
//		Skip: map[string]string{proxytest.CheckConntrackFlushed: "why this mode cannot"},
//		...
//	})
//
// Every check (the Check* constants) is a subtest with its own node, so
// the checks are independent and run in parallel. A check a mode cannot
// pass must be listed in Mode.Skip with the reason, which the subtest
// prints when it skips; a Skip key that names no check fails the run, and
// so does a check needing a Mode hook the mode does not give without a
// Skip entry saying why. Nothing is skipped silently.
//
// Env (NewEnv) is the node of one check; modes use it for tests of their
// own (rendered rules against the kernel, metrics) on the same harness.
// Env computes each State's Changed, Removed, RemovedServices,
// StaleUDPEndpoints and StaleUDPServices from the last successfully
// applied State as the core (serviceproxy's state builder) does, so that
// syncs after the first are incremental, as in production.
//
// The package needs root (testnet skips otherwise). It creates only
// namespaces through testnet, which removes them when the test ends, also
// on failure; it never touches the root namespace.
package proxytest
