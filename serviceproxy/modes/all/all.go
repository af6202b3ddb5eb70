// Package all registers every service proxy mode with serviceproxy: the
// binary blank-imports it (import _ ".../serviceproxy/modes/all") so that
// `switchboard kube-proxy --mode M` finds M. It holds no code of its own.
// Tests of packages that must not touch the kernel do not import it.
package all

import (
	_ "github.com/switchboard-dev/switchboard/serviceproxy/iptables"  // mode "iptables"
	_ "github.com/switchboard-dev/switchboard/serviceproxy/ipvs"      // mode "ipvs"
	_ "github.com/switchboard-dev/switchboard/serviceproxy/nftables"  // mode "nftables"
	_ "github.com/switchboard-dev/switchboard/serviceproxy/userspace" // mode "userspace"
)
