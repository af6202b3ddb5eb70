// Package upstream owns how the ingress controller reaches a backend
// Service: the ready endpoints of its EndpointSlices (straight to the pods,
// not through the cluster IP), a Pool per backend with round-robin or
// least-request picking (requests in flight counted per endpoint) and
// passive health (an endpoint that fails to connect is ejected for a
// while), and the Transport that picks an endpoint per attempt, reuses
// connections and retries idempotent requests on another endpoint when a
// connection could not be made.
//
// It does not route (ingress/routing), terminate TLS (ingress/certs) or
// read the store: the controller hands it Services and EndpointSlices.
package upstream

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/switchboard-dev/switchboard/ingress/routing"
)

// Endpoints resolves a service backend to the "ip:port" of its ready
// endpoints, in a stable order. The Ingress names a Service port by
// number (service.port.number is the Service's port, not the pod's) or by
// name; the EndpointSlices of the Service (label
// kubernetes.io/service-name) carry that port under the Service port's
// name with the pod's port number. "ready ... nil should be interpreted
// as true"; only the first address of an endpoint is used ("clients may
// choose to only use the first element"). An error says why there is no
// endpoint list at all (no such Service or port); an empty list with no
// error is a Service without ready endpoints.
func Endpoints(b routing.Backend, svc *corev1.Service, eps []*discoveryv1.EndpointSlice) ([]string, error) {
	if b.Resource != nil {
		return nil, fmt.Errorf("backend %s is a resource, not a service", b.Key())
	}
	if svc == nil {
		return nil, fmt.Errorf("service %s/%s not found", b.Namespace, b.Service)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, fmt.Errorf("service %s/%s is of type ExternalName, which the ingress does not proxy to", b.Namespace, b.Service)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if b.PortName != "" && p.Name == b.PortName || b.PortName == "" && p.Port == b.PortNumber {
			sp = p
			break
		}
	}
	if sp == nil {
		if b.PortName != "" {
			return nil, fmt.Errorf("service %s/%s has no TCP port named %q", b.Namespace, b.Service, b.PortName)
		}
		return nil, fmt.Errorf("service %s/%s has no TCP port %d", b.Namespace, b.Service, b.PortNumber)
	}
	seen := map[string]bool{}
	out := []string{}
	for _, s := range eps {
		if s.Namespace != svc.Namespace || s.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port := int32(-1)
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if name == sp.Name && proto == corev1.ProtocolTCP && p.Port != nil {
				port = *p.Port
				break
			}
		}
		if port <= 0 || port > 65535 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 || e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			ip := net.ParseIP(e.Addresses[0])
			if ip == nil {
				continue
			}
			a := net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
