// Package plugin is Switchboard's CNI 1.1 main plugin (type TypeName,
// "switchboard"): it attaches a container to a Linux bridge on the node
// the way the reference bridge plugin does, with IPAM from package
// cni/ipam run in-process (no second exec), or delegated to any other
// IPAM plugin named in "ipam.type".
//
// ADD creates a veth pair: CNI_IFNAME inside the container, and on the
// node a port of the bridge named HostVethName(containerID, ifname)
// ("sbv" + 12 hex digits), so DEL and GC find it without the container's
// namespace. It puts the gateway address on the bridge (isGateway),
// turns hairpin mode on for the port (hairpinMode), applies the MTU to
// the bridge and both veth ends, enables forwarding, and with ipMasq
// adds an nftables masquerade rule (table inet cni_plugins_masquerade,
// the same as the reference plugins' nftables backend) in the namespace
// the plugin runs in.
//
// Configuration (the reference bridge's field names; defaults differ
// where Kubernetes pods need them: isGateway and hairpinMode default to
// true):
//
//	{
//	  "cniVersion": "1.1.0", "name": "pods", "type": "switchboard",
//	  "bridge": "cni0", "isGateway": true, "isDefaultGateway": false,
//	  "hairpinMode": true, "ipMasq": false, "mtu": 1500, "promiscMode": false,
//	  "ipam": {"type": "switchboard-ipam", "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]},
//	  "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"]}
//	}
//
// An empty "ipam.type" means "switchboard-ipam". Fields of the reference
// bridge this plugin does not implement (vlan, vlanTrunk, macspoofchk,
// enabledad, disableContainerInterface, portIsolation, ipMasqBackend other
// than "nftables") are refused with error code 2 when set.
//
// Error codes: 1 incompatible version, 2 unsupported field, 3 container
// (its netns) does not exist, 4 invalid environment variables, 5 I/O
// failure (IPAM data dir), 6 undecodable config, 7 invalid config, 11 try
// again later (IPAM lock held too long), 50/51 from STATUS, and plugin
// codes: 100 no free address (ipam.ErrRangeFull), 101 CNI_IFNAME already
// exists in the container, 102 CHECK found the attachment broken, 103
// the attachment already holds addresses, 104 CHECK found no allocation.
//
// This package owns the bridge it is configured with, the host veths it
// names, and its masquerade rules, in the namespace it runs in; it must
// not touch other links, routes or rules there.
package plugin
