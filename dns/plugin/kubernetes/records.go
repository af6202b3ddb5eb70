package kubernetes

import (
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// The kinds of Service the records distinguish, as CoreDNS's object.Service
// does: ExternalName first, then headless (clusterIPs[0] == "None"), else a
// service with cluster IPs (ClusterIP, NodePort, LoadBalancer).
const (
	kindClusterIP uint8 = iota
	kindHeadless
	kindExternalName
)

// svcPort is a port of a Service or an EndpointSlice. Port -1 is CoreDNS's
// sentinel for an object without ports: it gives address records but no SRV.
type svcPort struct {
	name  string
	proto string
	port  int32
}

// addr is an address with its wire form precomputed; raw is shared by every
// answer that carries it and must never be written to.
type addr struct {
	ip  netip.Addr
	raw net.IP
}

func newAddr(ip netip.Addr) addr {
	ip = ip.Unmap()
	return addr{ip: ip, raw: net.IP(ip.AsSlice())}
}

// epAddr is one ready address of an EndpointSlice.
type epAddr struct {
	addr
	host string // the endpoint's hostname as CoreDNS's endpointHostname makes it
}

// epSlice is the part of an EndpointSlice DNS needs: its ports and its
// ready addresses (CoreDNS's object.EndpointSliceToEndpoints).
type epSlice struct {
	name    string // the slice's name
	ns      string
	svc     string // its kubernetes.io/service-name label
	svcKey  string // svc + "." + ns
	ports   []svcPort
	addrs   []epAddr
	trigger time.Time // endpoints.kubernetes.io/last-change-trigger-time, zero if absent
}

// service is the immutable record set of one Service, rebuilt whenever the
// Service or one of its EndpointSlices changes and swapped into the index.
type service struct {
	name, ns   string
	key        string // name + "." + ns, the index key
	suffix     string // name + "." + ns + ".svc.", the start of every name under it
	kind       uint8
	external   string // ExternalName, fully qualified, as written
	externalIP bool   // the ExternalName is an IP address: CoreDNS serves no record for it
	clusterIPs []addr // valid cluster IPs in spec order
	ports      []svcPort
	slices     []*epSlice // by slice name
	ready      int        // ready addresses over all slices (ignore empty_service)

	// The answers to the most frequent question, A/AAAA on the service
	// name: the cluster IPs, or the ready endpoint addresses of a headless
	// service, by family and without duplicates.
	v4, v6 []net.IP
}

func svcKeyOf(name, ns string) string { return name + "." + ns }

// endpointHostname is CoreDNS's endpointHostname: the endpoint's hostname,
// else (with endpoint_pod_names) the name of the pod it targets, else its
// address with dots or colons as dashes (a trailing dash gets a 0).
func endpointHostname(ip, hostname, targetRefName string, podNames bool) string {
	if hostname != "" {
		return hostname
	}
	if podNames && targetRefName != "" {
		return targetRefName
	}
	if strings.Contains(ip, ".") {
		return strings.ReplaceAll(ip, ".", "-")
	}
	if strings.Contains(ip, ":") {
		h := strings.ReplaceAll(ip, ":", "-")
		if strings.HasSuffix(h, "-") {
			return h + "0"
		}
		return h
	}
	return ""
}

// newEpSlice converts an EndpointSlice as CoreDNS does: a slice without
// ports gets the sentinel port -1, an endpoint whose ready condition is
// false is left out (nil counts as ready: "a nil value indicates an unknown
// state ... consumers should interpret this unknown state as ready"), and a
// pod name of 64 bytes or more is ignored as a label. Addresses that are not
// IP addresses (FQDN slices) are left out.
func newEpSlice(es *discoveryv1.EndpointSlice, podNames bool) *epSlice {
	s := &epSlice{
		name: es.Name,
		ns:   es.Namespace,
		svc:  es.Labels[discoveryv1.LabelServiceName],
	}
	s.svcKey = svcKeyOf(s.svc, s.ns)
	if len(es.Ports) == 0 {
		s.ports = []svcPort{{port: -1}}
	} else {
		s.ports = make([]svcPort, len(es.Ports))
		for i, p := range es.Ports {
			sp := svcPort{port: -1}
			if p.Port != nil {
				sp.port = *p.Port
			}
			if p.Name != nil {
				sp.name = *p.Name
			}
			if p.Protocol != nil {
				sp.proto = string(*p.Protocol)
			}
			s.ports[i] = sp
		}
	}
	n := 0
	for i := range es.Endpoints {
		if r := es.Endpoints[i].Conditions.Ready; r == nil || *r {
			n += len(es.Endpoints[i].Addresses)
		}
	}
	s.addrs = make([]epAddr, 0, n)
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
			continue
		}
		hostname, target := "", ""
		if ep.Hostname != nil {
			hostname = *ep.Hostname
		}
		if ep.TargetRef != nil && len(ep.TargetRef.Name) < 64 {
			target = ep.TargetRef.Name
		}
		for _, a := range ep.Addresses {
			ip, err := netip.ParseAddr(a)
			if err != nil || ip.Zone() != "" {
				continue
			}
			s.addrs = append(s.addrs, epAddr{addr: newAddr(ip), host: endpointHostname(a, hostname, target, podNames)})
		}
	}
	if v, ok := es.Annotations[corev1.EndpointsLastChangeTriggerTime]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			s.trigger = t
		}
	}
	return s
}

// newService builds the records of svc from the Service and its slices.
func newService(svc *corev1.Service, slices []*epSlice) *service {
	s := &service{
		name: svc.Name,
		ns:   svc.Namespace,
		key:  svcKeyOf(svc.Name, svc.Namespace),
	}
	s.suffix = s.key + ".svc."
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		s.kind = kindExternalName
		s.external = svc.Spec.ExternalName
		if !strings.HasSuffix(s.external, ".") {
			s.external += "."
		}
		if _, err := netip.ParseAddr(svc.Spec.ExternalName); err == nil {
			s.externalIP = true
		}
	case ips[0] == corev1.ClusterIPNone:
		s.kind = kindHeadless
	default:
		s.kind = kindClusterIP
		for _, c := range ips {
			if ip, err := netip.ParseAddr(c); err == nil && ip.Zone() == "" {
				s.clusterIPs = append(s.clusterIPs, newAddr(ip))
			}
		}
	}
	if len(svc.Spec.Ports) == 0 {
		s.ports = []svcPort{{port: -1}}
	} else {
		s.ports = make([]svcPort, len(svc.Spec.Ports))
		for i, p := range svc.Spec.Ports {
			s.ports[i] = svcPort{name: p.Name, proto: string(p.Protocol), port: p.Port}
		}
	}
	s.slices = append([]*epSlice(nil), slices...)
	for _, es := range slices {
		s.ready += len(es.addrs)
	}
	sort.Slice(s.slices, func(i, j int) bool { return s.slices[i].name < s.slices[j].name })

	switch s.kind {
	case kindClusterIP:
		for _, a := range s.clusterIPs {
			s.addFamily(a)
		}
	case kindHeadless:
		for _, es := range s.slices {
			for _, a := range es.addrs {
				s.addFamily(a.addr)
			}
		}
	}
	return s
}

// addFamily appends a to v4 or v6 unless it is there already (CoreDNS
// drops duplicate addresses from an answer).
func (s *service) addFamily(a addr) {
	list := &s.v6
	if a.ip.Is4() {
		list = &s.v4
	}
	for _, have := range *list {
		if have.Equal(a.raw) {
			return
		}
	}
	*list = append(*list, a.raw)
}

func ipKeyOf(ip netip.Addr) ipKey { return ip.Unmap().As16() }
