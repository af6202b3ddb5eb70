package userspace

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

var _ serviceproxy.DryRunner = (*Proxier)(nil)

// Render prints the listeners a Sync of state would open, one line each,
// sorted: "ADDRESS:PORT/PROTO KIND SERVICE cluster=[...] local=[...]"
// (an endpoint list is "-" when the service uses no such policy). It opens
// nothing.
func (p *Proxier) Render(st *serviceproxy.State) ([]byte, error) {
	if st == nil {
		return nil, fmt.Errorf("userspace: Render: nil state")
	}
	nodeIPs := st.Node.IPs
	if len(nodeIPs) == 0 {
		nodeIPs = p.cfg.NodeIPs
	}
	var lines []string
	for name, sp := range st.Services {
		if sp == nil || sp.Protocol != corev1.ProtocolTCP && sp.Protocol != corev1.ProtocolUDP {
			continue
		}
		eps := slices.DeleteFunc(slices.Clone(st.Endpoints[name]), func(e *serviceproxy.Endpoint) bool { return e == nil })
		cluster, local, _, _ := serviceproxy.CategorizeEndpoints(eps, sp, st.Node.Name, st.Node.Zone)
		list := func(eps []*serviceproxy.Endpoint, fam netip.Addr, used bool) string {
			if !used {
				return "-"
			}
			var out []string
			for _, e := range eps {
				if e.IP.Unmap().Is4() == fam.Is4() {
					out = append(out, e.String())
				}
			}
			return "[" + strings.Join(out, " ") + "]"
		}
		add := func(ip netip.Addr, port int32, kind listenerKind) {
			if !ip.IsValid() || port <= 0 || port > 65535 {
				return
			}
			ip = ip.Unmap()
			lines = append(lines, fmt.Sprintf("%s/%s %s %s cluster=%s local=%s",
				netip.AddrPortFrom(ip, uint16(port)), sp.Protocol, kind, name,
				list(cluster, ip, sp.UsesClusterEndpoints()), list(local, ip, sp.UsesLocalEndpoints())))
		}
		for _, ip := range sp.ClusterIPs {
			add(ip, sp.Port, kindClusterIP)
		}
		if sp.NodePort != 0 {
			for _, ip := range nodeIPs {
				add(ip, sp.NodePort, kindNodePort)
			}
		}
		for _, ip := range sp.ExternalIPs {
			add(ip, sp.Port, kindExternalIP)
		}
		for _, ip := range sp.LoadBalancerVIPs {
			add(ip, sp.Port, kindLoadBalancer)
		}
	}
	slices.Sort(lines)
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
