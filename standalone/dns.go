package standalone

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// Cluster DNS of `up`: the kube-dns Service at the service CIDR's tenth
// address, answered by the in-process DNS server (package dns) with
// CoreDNS's kube-dns Corefile. The server listens on the Service's address
// itself and on the node's address, which is the Service's endpoint, the
// way a hostNetwork CoreDNS pod would be.

// DefaultUnprivilegedDNSPort is where cluster DNS listens when port 53
// cannot be bound (not root and no CAP_NET_BIND_SERVICE).
const DefaultUnprivilegedDNSPort = 1053

// dnsManagedBy marks the EndpointSlice of kube-dns as the node's, so that
// the EndpointSlice controller never touches it.
const dnsManagedBy = "node.switchboard.dev"

// chooseDNSPort returns want when set, else 53 when a UDP socket can bind
// ip:53, else DefaultUnprivilegedDNSPort.
func chooseDNSPort(ip netip.Addr, want int) int {
	if want > 0 {
		return want
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 53)))
	if err == nil {
		c.Close()
		return 53
	}
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return DefaultUnprivilegedDNSPort
	}
	// Taken by someone else: the unprivileged port says so more clearly
	// when it fails too.
	return DefaultUnprivilegedDNSPort
}

// clusterCorefile is CoreDNS's kube-dns Corefile for `up`: bound to the
// DNS service address and the node address only, health, ready and
// metrics on the service address (never on all addresses, where they would
// take ports from pods), and no lameduck so that Ctrl-C is prompt.
func clusterCorefile(zone string, svcIP, nodeIP netip.Addr, port int) string {
	return fmt.Sprintf(`.:%d {
    bind %s %s
    errors
    health %s
    ready %s
    kubernetes %s in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus %s
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    loadbalance
}
`, port, svcIP, nodeIP,
		net.JoinHostPort(svcIP.String(), "8080"),
		net.JoinHostPort(svcIP.String(), "8181"),
		zone,
		net.JoinHostPort(svcIP.String(), "9153"))
}

// nodeCorefile is the kube-dns Corefile of the netns sandbox: everything
// on the node address inside the node namespace (the service proxy DNATs
// the kube-dns Service there). forward finds no route out of the node
// namespace: names outside the cluster fail there, and nothing leaves.
func nodeCorefile(zone string, nodeIP netip.Addr, port int) string {
	return fmt.Sprintf(`.:%d {
    bind %s
    errors
    health %s
    ready %s
    kubernetes %s in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus %s
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    loadbalance
}
`, port, nodeIP,
		net.JoinHostPort(nodeIP.String(), "8080"),
		net.JoinHostPort(nodeIP.String(), "8181"),
		zone,
		net.JoinHostPort(nodeIP.String(), "9153"))
}

// readCorefile reads a user's Corefile for `up --corefile`.
func readCorefile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--corefile: %w", err)
	}
	return b, nil
}

// dnsProxyName is the kube-dns objects' service.kubernetes.io/service-proxy-name.
const dnsProxyName = "switchboard-dns"

// registerKubeDNS writes the kube-system/kube-dns Service (no selector:
// its endpoint is the node) and its EndpointSlice into the store.
//
// With proxied (the netns sandbox) the service proxy carries the Service's
// traffic to the node address like any other's; without, the DNS server
// listens on the service IP itself and the Service and its slice carry
// service.kubernetes.io/service-proxy-name, so that the proxy leaves them
// alone, as kube-proxy does with services another proxy serves.
func registerKubeDNS(store *cluster.Store, svcIP, nodeIP netip.Addr, nodeName string, port int, proxied bool) error {
	labels := map[string]string{
		"k8s-app":                       "kube-dns",
		"kubernetes.io/cluster-service": "true",
		"kubernetes.io/name":            "CoreDNS",
	}
	sliceLabels := map[string]string{
		discoveryv1.LabelServiceName: "kube-dns",
		discoveryv1.LabelManagedBy:   dnsManagedBy,
	}
	if !proxied {
		labels[serviceproxy.LabelServiceProxyName] = dnsProxyName
		sliceLabels[serviceproxy.LabelServiceProxyName] = dnsProxyName
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: metav1.NamespaceSystem, Labels: labels,
			Annotations: map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
		Spec: corev1.ServiceSpec{
			ClusterIP: svcIP.String(),
			Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(int32(port))},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(int32(port))},
				{Name: "metrics", Port: 9153, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9153)},
			},
		},
	}
	if _, _, err := store.Apply(svc); err != nil {
		return fmt.Errorf("kube-system/kube-dns Service: %w", err)
	}
	addrType := discoveryv1.AddressTypeIPv4
	if nodeIP.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "kube-dns-" + sanitize(nodeName),
			Namespace: metav1.NamespaceSystem,
			Labels:    sliceLabels,
		},
		AddressType: addrType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{nodeIP.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
			NodeName:   ptr.To(nodeName),
		}},
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr.To("dns"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolUDP)},
			{Name: ptr.To("dns-tcp"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)},
			{Name: ptr.To("metrics"), Port: ptr.To(int32(9153)), Protocol: ptr.To(corev1.ProtocolTCP)},
		},
	}
	if _, _, err := store.Apply(slice); err != nil {
		return fmt.Errorf("kube-system/kube-dns EndpointSlice: %w", err)
	}
	return nil
}

// sanitize makes a node name usable inside an object name.
func sanitize(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// digHint is the command a user types to ask cluster DNS.
func digHint(svcIP netip.Addr, port int, zone string) string {
	p := ""
	if port != 53 {
		p = " -p " + strconv.Itoa(port)
	}
	return fmt.Sprintf("dig @%s%s kube-dns.kube-system.svc.%s", svcIP, p, zone)
}
