package ingress

import (
	"net"
	"slices"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

// publishIP is the address written to status.loadBalancer.ingress:
// Config.PublishAddress, else the IP of the HTTPS listener (the HTTP one
// without HTTPS); a listener on all addresses publishes the host's first
// non-loopback IPv4 address, or 127.0.0.1 when it has none.
func (c *Controller) publishIP() string {
	if c.cfg.PublishAddress != "" {
		return c.cfg.PublishAddress
	}
	ln := c.httpsLn
	if ln == nil {
		ln = c.httpLn
	}
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	if !ta.IP.IsUnspecified() {
		return ta.IP.String()
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

// writeStatus sets status.loadBalancer.ingress of the served Ingresses to
// the published address and clears it on the Ingresses of our class that
// are not served (refused) when it names that address. The store is
// written only when the status differs, so the write's own event settles.
func (c *Controller) writeStatus(ours []*networkingv1.Ingress, served []*networkingv1.Ingress) {
	ip := c.publishIP()
	if ip == "" {
		return
	}
	want := []networkingv1.IngressLoadBalancerIngress{{IP: ip}}
	isServed := map[*networkingv1.Ingress]bool{}
	for _, ing := range served {
		isServed[ing] = true
	}
	for _, ing := range ours {
		cur := ing.Status.LoadBalancer.Ingress
		var next []networkingv1.IngressLoadBalancerIngress
		switch {
		case isServed[ing]:
			next = want
		case slices.ContainsFunc(cur, func(x networkingv1.IngressLoadBalancerIngress) bool { return x.IP == ip }):
			next = nil
		default:
			continue
		}
		if slices.EqualFunc(cur, next, func(a, b networkingv1.IngressLoadBalancerIngress) bool {
			return a.IP == b.IP && a.Hostname == b.Hostname && len(a.Ports) == 0 && len(b.Ports) == 0
		}) {
			continue
		}
		_, err := c.cfg.Store.UpdateStatusFunc(cluster.KindIngress, ing.Namespace, ing.Name, func(o cluster.Object) error {
			o.(*networkingv1.Ingress).Status.LoadBalancer.Ingress = slices.Clone(next)
			return nil
		})
		if err != nil {
			c.log.Warn("cannot write the Ingress status", "ingress", ing.Namespace+"/"+ing.Name, "err", err)
		}
	}
}
