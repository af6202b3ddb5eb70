package admission

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	supportedServiceTypes = []corev1.ServiceType{corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName}
	supportedSessionAffinities = []corev1.ServiceAffinity{corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone}
	supportedIPFamilies        = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	supportedIPFamilyPolicies  = []corev1.IPFamilyPolicy{corev1.IPFamilyPolicySingleStack,
		corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack}
	supportedExternalTrafficPolicies = []corev1.ServiceExternalTrafficPolicy{corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal}
	supportedInternalTrafficPolicies = []corev1.ServiceInternalTrafficPolicy{corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal}
)

// validateService is ValidateService (and ValidateServiceUpdate when old
// is set). Service names are DNS-1035 labels (they become DNS names and
// environment variable names).
func validateService(s, old *corev1.Service) field.ErrorList {
	errs := validateMeta(s, apivalidation.NameIsDNS1035Label)
	sp := field.NewPath("spec")
	headless := s.Spec.ClusterIP == corev1.ClusterIPNone

	switch {
	case s.Spec.Type == "":
		errs = append(errs, field.Required(sp.Child("type"), ""))
	case !slices.Contains(supportedServiceTypes, s.Spec.Type):
		errs = append(errs, field.NotSupported(sp.Child("type"), s.Spec.Type, supportedServiceTypes))
	}

	if len(s.Spec.Ports) == 0 && !headless && s.Spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(sp.Child("ports"), ""))
	}
	switch s.Spec.Type {
	case corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort:
		if headless {
			errs = append(errs, field.Invalid(sp.Child("clusterIP"), s.Spec.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", s.Spec.Type)))
		}
	case corev1.ServiceTypeExternalName:
		if s.Spec.ClusterIP != "" {
			errs = append(errs, field.Forbidden(sp.Child("clusterIP"), "may not be set for ExternalName services"))
		}
		if len(s.Spec.ClusterIPs) != 0 {
			errs = append(errs, field.Forbidden(sp.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if len(s.Spec.IPFamilies) != 0 {
			errs = append(errs, field.Forbidden(sp.Child("ipFamilies"), "may not be set for ExternalName services"))
		}
		if s.Spec.IPFamilyPolicy != nil {
			errs = append(errs, field.Forbidden(sp.Child("ipFamilyPolicy"), "may not be set for ExternalName services"))
		}
		// "The ExternalName must be a valid RFC-1123 DNS name."
		if s.Spec.ExternalName == "" {
			errs = append(errs, field.Required(sp.Child("externalName"), ""))
		} else {
			errs = append(errs, validateDNS1123Subdomain(strings.TrimSuffix(s.Spec.ExternalName, "."), sp.Child("externalName"))...)
		}
	}

	names := map[string]bool{}
	portKeys := map[string]bool{}
	nodePorts := map[string]bool{}
	for i := range s.Spec.Ports {
		p := &s.Spec.Ports[i]
		pp := sp.Child("ports").Index(i)
		if len(s.Spec.Ports) > 1 && p.Name == "" {
			errs = append(errs, field.Required(pp.Child("name"), "a name is required when a Service has more than one port"))
		} else if p.Name != "" {
			errs = append(errs, validateDNS1123Label(p.Name, pp.Child("name"))...)
			if names[p.Name] {
				errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
			}
			names[p.Name] = true
		}
		errs = append(errs, validatePortNum(p.Port, pp.Child("port"))...)
		errs = append(errs, validateProtocol(p.Protocol, pp.Child("protocol"))...)
		errs = append(errs, validatePortNumOrName(p.TargetPort, pp.Child("targetPort"))...)
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if portKeys[key] {
			errs = append(errs, field.Duplicate(pp, key))
		}
		portKeys[key] = true
		if p.NodePort != 0 {
			if s.Spec.Type == corev1.ServiceTypeClusterIP || s.Spec.Type == corev1.ServiceTypeExternalName {
				errs = append(errs, field.Forbidden(pp.Child("nodePort"), fmt.Sprintf("may not be used when `type` is '%s'", s.Spec.Type)))
			} else {
				errs = append(errs, validatePortNum(p.NodePort, pp.Child("nodePort"))...)
			}
			nk := fmt.Sprintf("%d/%s", p.NodePort, p.Protocol)
			if nodePorts[nk] {
				errs = append(errs, field.Duplicate(pp.Child("nodePort"), p.NodePort))
			}
			nodePorts[nk] = true
		}
		if p.AppProtocol != nil {
			for _, msg := range validation.IsQualifiedName(*p.AppProtocol) {
				errs = append(errs, field.Invalid(pp.Child("appProtocol"), *p.AppProtocol, msg))
			}
		}
	}

	if s.Spec.Selector != nil {
		errs = append(errs, validateSelectorLabels(s.Spec.Selector, sp.Child("selector"))...)
	}

	switch {
	case s.Spec.SessionAffinity == "":
		errs = append(errs, field.Required(sp.Child("sessionAffinity"), ""))
	case !slices.Contains(supportedSessionAffinities, s.Spec.SessionAffinity):
		errs = append(errs, field.NotSupported(sp.Child("sessionAffinity"), s.Spec.SessionAffinity, supportedSessionAffinities))
	case s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP:
		cp := sp.Child("sessionAffinityConfig")
		c := s.Spec.SessionAffinityConfig
		switch {
		case c == nil:
			errs = append(errs, field.Required(cp, "when session affinity type is ClientIP"))
		case c.ClientIP == nil:
			errs = append(errs, field.Required(cp.Child("clientIP"), "when session affinity type is ClientIP"))
		case c.ClientIP.TimeoutSeconds == nil:
			errs = append(errs, field.Required(cp.Child("clientIP", "timeoutSeconds"), "when session affinity type is ClientIP"))
		case *c.ClientIP.TimeoutSeconds <= 0 || *c.ClientIP.TimeoutSeconds > maxClientIPAffinitySeconds:
			errs = append(errs, field.Invalid(cp.Child("clientIP", "timeoutSeconds"), *c.ClientIP.TimeoutSeconds,
				fmt.Sprintf("must be greater than 0 and less than or equal to %d", maxClientIPAffinitySeconds)))
		}
	case s.Spec.SessionAffinityConfig != nil:
		errs = append(errs, field.Forbidden(sp.Child("sessionAffinityConfig"), "must not be set when session affinity is None"))
	}

	errs = append(errs, validateClusterIPs(s, sp)...)

	for i, ip := range s.Spec.ExternalIPs {
		errs = append(errs, validateIP(ip, sp.Child("externalIPs").Index(i))...)
	}
	if s.Spec.ExternalTrafficPolicy != "" {
		if !externallyAccessible(s) {
			errs = append(errs, field.Invalid(sp.Child("externalTrafficPolicy"), s.Spec.ExternalTrafficPolicy, "may only be set for externally-accessible services"))
		} else if !slices.Contains(supportedExternalTrafficPolicies, s.Spec.ExternalTrafficPolicy) {
			errs = append(errs, field.NotSupported(sp.Child("externalTrafficPolicy"), s.Spec.ExternalTrafficPolicy, supportedExternalTrafficPolicies))
		}
	}
	if s.Spec.InternalTrafficPolicy != nil && !slices.Contains(supportedInternalTrafficPolicies, *s.Spec.InternalTrafficPolicy) {
		errs = append(errs, field.NotSupported(sp.Child("internalTrafficPolicy"), *s.Spec.InternalTrafficPolicy, supportedInternalTrafficPolicies))
	}
	if s.Spec.HealthCheckNodePort != 0 {
		if !needsHCNodePort(s) {
			errs = append(errs, field.Invalid(sp.Child("healthCheckNodePort"), s.Spec.HealthCheckNodePort,
				"may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		} else {
			errs = append(errs, validatePortNum(s.Spec.HealthCheckNodePort, sp.Child("healthCheckNodePort"))...)
		}
	}
	if len(s.Spec.LoadBalancerSourceRanges) > 0 && s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		errs = append(errs, field.Forbidden(sp.Child("loadBalancerSourceRanges"), "may only be used when `type` is 'LoadBalancer'"))
	}
	for i, c := range s.Spec.LoadBalancerSourceRanges {
		errs = append(errs, validateCIDR(strings.TrimSpace(c), sp.Child("loadBalancerSourceRanges").Index(i))...)
	}

	if old != nil && s.Spec.Type != corev1.ServiceTypeExternalName &&
		old.Spec.Type != corev1.ServiceTypeExternalName && old.Spec.ClusterIP != "" {
		// "ClusterIP should be immutable for services using it."
		errs = append(errs, apivalidation.ValidateImmutableField(s.Spec.ClusterIP, old.Spec.ClusterIP, sp.Child("clusterIP"))...)
	}
	return errs
}

// validateClusterIPs checks clusterIP, clusterIPs, ipFamilies and
// ipFamilyPolicy together (ValidateServiceClusterIPsRelatedFields).
func validateClusterIPs(s *corev1.Service, sp *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone && !isIP(s.Spec.ClusterIP) {
		errs = append(errs, field.Invalid(sp.Child("clusterIP"), s.Spec.ClusterIP, "must be empty, 'None', or a valid IP address"))
	}
	if len(s.Spec.ClusterIPs) > 0 && s.Spec.ClusterIPs[0] != s.Spec.ClusterIP {
		errs = append(errs, field.Invalid(sp.Child("clusterIPs").Index(0), s.Spec.ClusterIPs[0], "must match `clusterIP` when set"))
	}
	if len(s.Spec.ClusterIPs) > 2 {
		errs = append(errs, field.Invalid(sp.Child("clusterIPs"), s.Spec.ClusterIPs, "may only hold up to 2 values"))
	}
	for i, ip := range s.Spec.ClusterIPs {
		ipp := sp.Child("clusterIPs").Index(i)
		if ip == corev1.ClusterIPNone {
			if i > 0 || len(s.Spec.ClusterIPs) > 1 {
				errs = append(errs, field.Invalid(ipp, ip, "'None' must be the first and only value"))
			}
			continue
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			if i > 0 {
				errs = append(errs, field.Invalid(ipp, ip, "must be a valid IP address"))
			}
			continue
		}
		if i < len(s.Spec.IPFamilies) {
			want := s.Spec.IPFamilies[i]
			is4 := a.Is4() || a.Is4In6()
			if (want == corev1.IPv4Protocol && !is4) || (want == corev1.IPv6Protocol && is4) {
				errs = append(errs, field.Invalid(ipp, ip, fmt.Sprintf("expected an %s value as indicated by `ipFamilies[%d]`", want, i)))
			}
		}
	}
	if len(s.Spec.IPFamilies) > 2 {
		errs = append(errs, field.Invalid(sp.Child("ipFamilies"), s.Spec.IPFamilies, "may only hold up to 2 values"))
	}
	seen := map[corev1.IPFamily]bool{}
	for i, f := range s.Spec.IPFamilies {
		fp := sp.Child("ipFamilies").Index(i)
		if !slices.Contains(supportedIPFamilies, f) {
			errs = append(errs, field.NotSupported(fp, f, supportedIPFamilies))
		} else if seen[f] {
			errs = append(errs, field.Duplicate(fp, f))
		}
		seen[f] = true
	}
	if s.Spec.IPFamilyPolicy != nil && !slices.Contains(supportedIPFamilyPolicies, *s.Spec.IPFamilyPolicy) {
		errs = append(errs, field.NotSupported(sp.Child("ipFamilyPolicy"), *s.Spec.IPFamilyPolicy, supportedIPFamilyPolicies))
	}
	return errs
}

var supportedAddressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN}

// EndpointSlice limits from the discovery/v1 API: "endpoints ... can
// contain a maximum of 1000 endpoints", "addresses ... Must contain at
// least one address but no more than 100", "ports ... Each slice may
// include a maximum of 100 ports" (validation allows 20000).
const (
	maxEndpoints         = 1000
	maxEndpointAddresses = 100
	maxEndpointPorts     = 20000
)

// validateEndpointSlice is ValidateEndpointSlice(Update).
func validateEndpointSlice(e, old *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateMeta(e, apivalidation.NameIsDNSSubdomain)
	at := field.NewPath("addressType")
	switch {
	case e.AddressType == "":
		errs = append(errs, field.Required(at, ""))
	case !slices.Contains(supportedAddressTypes, e.AddressType):
		errs = append(errs, field.NotSupported(at, e.AddressType, supportedAddressTypes))
	}
	ep := field.NewPath("endpoints")
	if len(e.Endpoints) > maxEndpoints {
		errs = append(errs, field.TooMany(ep, len(e.Endpoints), maxEndpoints))
	} else {
		for i := range e.Endpoints {
			errs = append(errs, validateEndpoint(&e.Endpoints[i], e.AddressType, ep.Index(i))...)
		}
	}
	pp := field.NewPath("ports")
	if len(e.Ports) > maxEndpointPorts {
		errs = append(errs, field.TooMany(pp, len(e.Ports), maxEndpointPorts))
	} else {
		names := map[string]bool{}
		for i, p := range e.Ports {
			ip := pp.Index(i)
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if name != "" {
				errs = append(errs, validateDNS1123Label(name, ip.Child("name"))...)
			}
			if names[name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), name))
			}
			names[name] = true
			if p.Protocol == nil {
				errs = append(errs, field.Required(ip.Child("protocol"), ""))
			} else {
				errs = append(errs, validateProtocol(*p.Protocol, ip.Child("protocol"))...)
			}
			if p.Port != nil {
				errs = append(errs, validatePortNum(*p.Port, ip.Child("port"))...)
			}
			if p.AppProtocol != nil {
				for _, msg := range validation.IsQualifiedName(*p.AppProtocol) {
					errs = append(errs, field.Invalid(ip.Child("appProtocol"), *p.AppProtocol, msg))
				}
			}
		}
	}
	if old != nil {
		errs = append(errs, apivalidation.ValidateImmutableField(e.AddressType, old.AddressType, at)...)
	}
	return errs
}

func validateEndpoint(e *discoveryv1.Endpoint, t discoveryv1.AddressType, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	ap := fld.Child("addresses")
	switch {
	case len(e.Addresses) == 0:
		errs = append(errs, field.Required(ap, "must contain at least 1 address"))
	case len(e.Addresses) > maxEndpointAddresses:
		errs = append(errs, field.TooMany(ap, len(e.Addresses), maxEndpointAddresses))
	}
	for i, a := range e.Addresses {
		p := ap.Index(i)
		switch t {
		case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
			ipErrs := validateIP(a, p)
			errs = append(errs, ipErrs...)
			if addr, err := netip.ParseAddr(a); len(ipErrs) == 0 && err == nil {
				is4 := addr.Is4() || addr.Is4In6()
				if t == discoveryv1.AddressTypeIPv4 && !is4 {
					errs = append(errs, field.Invalid(p, a, "must be an IPv4 address"))
				}
				if t == discoveryv1.AddressTypeIPv6 && is4 {
					errs = append(errs, field.Invalid(p, a, "must be an IPv6 address"))
				}
			}
		case discoveryv1.AddressTypeFQDN:
			errs = append(errs, validation.IsFullyQualifiedDomainName(p, a)...)
		}
	}
	if e.Hostname != nil {
		errs = append(errs, validateDNS1123Label(*e.Hostname, fld.Child("hostname"))...)
	}
	if e.NodeName != nil {
		errs = append(errs, validateDNS1123Subdomain(*e.NodeName, fld.Child("nodeName"))...)
	}
	return errs
}

// maxClientIPAffinitySeconds is core.MaxClientIPServiceAffinitySeconds:
// "timeoutSeconds ... must be >0 && <=86400 (for 1 day)".
const maxClientIPAffinitySeconds = 86400
