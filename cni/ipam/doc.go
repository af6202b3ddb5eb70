// Package ipam is Switchboard's IP address management for CNI, in the
// manner of the reference host-local plugin: address ranges (one range set
// per family), routes and a gateway per range, and one file per allocated
// address under a data directory, guarded by a file lock so concurrent
// plugin processes never hand out the same address.
//
// On disk, for network NAME under DataDir (default DefaultDataDir):
//
//	DataDir/NAME/lock                  flock(2) held for every change
//	DataDir/NAME/<ip>                  one per allocated address: "<containerID>\r\n<ifname>" (host-local's format)
//	DataDir/NAME/last_reserved_ip.<N>  where range set N continues (round robin, as host-local)
//	DataDir/NAME/attach/<hash>         the addresses of one (containerID, ifname), so DEL needs no scan
//
// The package is used in-process by the switchboard bridge plugin
// (package cni/plugin) and stands alone as a delegated IPAM plugin (type
// TypeName, see PluginFuncs) for other plugins such as the reference
// bridge. The configuration is the "ipam" object of a network config:
//
//	"ipam": {
//	  "type": "switchboard-ipam",
//	  "ranges": [[{"subnet": "10.88.0.0/16", "rangeStart": "10.88.0.10", "rangeEnd": "10.88.0.200", "gateway": "10.88.0.1"}]],
//	  "routes": [{"dst": "0.0.0.0/0"}],
//	  "dataDir": "/var/lib/switchboard/cni/networks"
//	}
//
// "subnet" (with "rangeStart"/"rangeEnd"/"gateway" optional) may also be
// given at the top of the ipam object, as host-local accepts. A route
// without "gw" goes via the gateway of the first range of its family.
//
// This package owns only its data directory; it never touches links,
// routes or firewall rules.
package ipam
