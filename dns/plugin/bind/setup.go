// Package bind is the bind plugin: it restricts the addresses a server
// block listens on to the IP addresses and interface names it is given,
// as CoreDNS's bind. It owns only the parsing of its directive; the
// server opens the sockets. It adds no handler to the chain.
package bind

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func init() { dnsserver.Register("bind", setup) }

// interfaces lists the host's interfaces; a variable for tests.
var interfaces = net.Interfaces

func setup(c *dnsserver.Controller) error {
	ifaces, err := interfaces()
	if err != nil {
		c.Env.Log().Warn("cannot bind by interface name: failed to list interfaces", "plugin", "bind", "err", err)
	}
	all := []string{}
	for c.Next() {
		addrs, except, err := parse(c)
		if err != nil {
			return plugin.Error("bind", err)
		}
		ips, err := listIP(addrs, ifaces)
		if err != nil {
			return plugin.Error("bind", c.Err(err.Error()))
		}
		excluded, err := listIP(except, ifaces)
		if err != nil {
			return plugin.Error("bind", c.Err(err.Error()))
		}
		for _, ip := range ips {
			if !slices.Contains(excluded, ip) && !slices.Contains(all, ip) {
				all = append(all, ip)
			}
		}
	}
	if len(all) == 0 {
		return plugin.Error("bind", c.Err("no address left to bind to"))
	}
	c.Config.ListenHosts = all
	return nil
}

func parse(c *dnsserver.Controller) (addrs, except []string, err error) {
	addrs = c.RemainingArgs()
	if len(addrs) == 0 {
		return nil, nil, c.Err("at least one address or interface name is expected")
	}
	for c.NextBlock() {
		switch c.Val() {
		case "except":
			except = c.RemainingArgs()
			if len(except) == 0 {
				return nil, nil, c.Err("at least one address or interface must be given to except subdirective")
			}
		default:
			return nil, nil, c.Errf("invalid option %q", c.Val())
		}
	}
	return addrs, except, nil
}

// listIP turns addresses and interface names into IP addresses: an
// interface gives every address it has (link-local IPv6 ones with their
// zone), as CoreDNS.
func listIP(args []string, ifaces []net.Interface) ([]string, error) {
	var all []string
	for _, a := range args {
		isIface := false
		for _, iface := range ifaces {
			if a != iface.Name {
				continue
			}
			isIface = true
			addrs, err := iface.Addrs()
			if err != nil {
				return nil, fmt.Errorf("failed to get the IP addresses of the interface: %q", a)
			}
			for _, addr := range addrs {
				ipnet, ok := addr.(*net.IPNet)
				if !ok {
					continue
				}
				s := ipnet.IP.String()
				if ipnet.IP.To4() == nil && (ipnet.IP.IsLinkLocalMulticast() || ipnet.IP.IsLinkLocalUnicast()) {
					s += "%" + iface.Name
				}
				all = append(all, s)
			}
		}
		if isIface {
			continue
		}
		if net.ParseIP(a) == nil {
			return nil, errors.New("not a valid IP address or interface name: " + fmt.Sprintf("%q", a))
		}
		all = append(all, a)
	}
	return all, nil
}
