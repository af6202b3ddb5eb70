package ipam

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// PluginFuncs are the CNI commands of the standalone IPAM plugin (type
// TypeName), run by skel when another plugin delegates its IPAM to us.
// ADD prints the abbreviated result ("Delegated IPAM plugins must return
// an abbreviated Success object": ips without interface, routes, dns) in
// the config's cniVersion.
func PluginFuncs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus}
}

func cmdAdd(args *skel.CmdArgs) error {
	nc, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	res, err := Allocate(nc.IPAM, args.ContainerID, args.IfName)
	if err != nil {
		return err
	}
	res.DNS = nc.DNS
	return types.PrintResult(res, nc.CNIVersion)
}

func cmdDel(args *skel.CmdArgs) error {
	nc, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	return Release(nc.IPAM, args.ContainerID, args.IfName)
}

func cmdCheck(args *skel.CmdArgs) error {
	nc, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	return Check(nc.IPAM, args.ContainerID, args.IfName, nil)
}

func cmdGC(args *skel.CmdArgs) error {
	nc, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	return GC(nc.IPAM, nc.ValidAttachments)
}

func cmdStatus(args *skel.CmdArgs) error {
	nc, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	return Status(nc.IPAM)
}
