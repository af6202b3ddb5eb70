package ingress

import (
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

// publishAddresses is what status.loadBalancer.ingress gets:
// Config.PublishAddress, else the addresses of Config.PublishService
// (nil while it does not exist), else the IP of the HTTPS listener (the
// HTTP one without HTTPS); a listener on all addresses publishes the
// host's first non-loopback IPv4 address, or 127.0.0.1 when it has none.
func (c *Controller) publishAddresses() []networkingv1.IngressLoadBalancerIngress {
	if c.cfg.PublishAddress != "" {
		return []networkingv1.IngressLoadBalancerIngress{{IP: c.cfg.PublishAddress}}
	}
	if c.cfg.PublishService != "" {
		ns, name, _ := strings.Cut(c.cfg.PublishService, "/")
		svc, err := cluster.Get[*corev1.Service](c.cfg.Store, ns, name)
		if err != nil {
			return nil
		}
		return serviceAddresses(svc)
	}
	ln := c.httpsLn
	if ln == nil {
		ln = c.httpLn
	}
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return nil
	}
	if !ta.IP.IsUnspecified() {
		return []networkingv1.IngressLoadBalancerIngress{{IP: ta.IP.String()}}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return []networkingv1.IngressLoadBalancerIngress{{IP: n.IP.String()}}
		}
	}
	return []networkingv1.IngressLoadBalancerIngress{{IP: "127.0.0.1"}}
}

// serviceAddresses are the addresses of the Service in front of the
// controller, as ingress-nginx's statusAddressFromService takes them
// (sorted by hostname, then IP, as it sorts them).
func serviceAddresses(svc *corev1.Service) []networkingv1.IngressLoadBalancerIngress {
	var out []networkingv1.IngressLoadBalancerIngress
	ips := func(list ...string) {
		for _, ip := range list {
			if ip != "" && ip != corev1.ClusterIPNone {
				out = append(out, networkingv1.IngressLoadBalancerIngress{IP: ip})
			}
		}
	}
	switch svc.Spec.Type {
	case corev1.ServiceTypeExternalName:
		out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: svc.Spec.ExternalName})
	case corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			ips(svc.Spec.ExternalIPs...)
		} else {
			ips(svc.Spec.ClusterIP)
		}
	case corev1.ServiceTypeLoadBalancer:
		for _, lb := range svc.Status.LoadBalancer.Ingress {
			if lb.IP == "" {
				out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: lb.Hostname})
			} else {
				ips(lb.IP)
			}
		}
		ips(svc.Spec.ExternalIPs...)
	default: // ClusterIP
		ips(svc.Spec.ClusterIP)
	}
	slices.SortFunc(out, func(a, b networkingv1.IngressLoadBalancerIngress) int {
		if c := strings.Compare(a.Hostname, b.Hostname); c != 0 {
			return c
		}
		return strings.Compare(a.IP, b.IP)
	})
	return out
}

// writeStatus sets status.loadBalancer.ingress of the served Ingresses to
// the published address and clears it on the Ingresses of our class that
// are not served (refused) when it names that address. The store is
// written only when the status differs, so the write's own event settles.
func (c *Controller) writeStatus(ours []*networkingv1.Ingress, served []*networkingv1.Ingress) {
	want := c.publishAddresses()
	if len(want) == 0 {
		return
	}
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
		case slices.ContainsFunc(cur, func(x networkingv1.IngressLoadBalancerIngress) bool {
			return slices.ContainsFunc(want, func(w networkingv1.IngressLoadBalancerIngress) bool { return w.IP == x.IP && w.Hostname == x.Hostname })
		}):
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
