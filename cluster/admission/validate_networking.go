package admission

import (
	"net/netip"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var supportedPathTypes = []networkingv1.PathType{networkingv1.PathTypeExact, networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific}

// validateIngress is ValidateIngress for networking.k8s.io/v1.
func validateIngress(ing *networkingv1.Ingress) field.ErrorList {
	errs := validateMeta(ing, apivalidation.NameIsDNSSubdomain)
	sp := field.NewPath("spec")
	if ing.Spec.IngressClassName != nil {
		errs = append(errs, validateDNS1123Subdomain(*ing.Spec.IngressClassName, sp.Child("ingressClassName"))...)
	}
	if len(ing.Spec.Rules) == 0 && ing.Spec.DefaultBackend == nil {
		errs = append(errs, field.Invalid(sp, ing.Spec.Rules, "either `defaultBackend` or `rules` must be specified"))
	}
	if ing.Spec.DefaultBackend != nil {
		errs = append(errs, validateIngressBackend(ing.Spec.DefaultBackend, sp.Child("defaultBackend"))...)
	}
	for i, r := range ing.Spec.Rules {
		rp := sp.Child("rules").Index(i)
		if r.Host != "" {
			errs = append(errs, validateIngressHost(r.Host, rp.Child("host"))...)
		}
		if r.HTTP == nil {
			continue
		}
		hp := rp.Child("http", "paths")
		if len(r.HTTP.Paths) == 0 {
			errs = append(errs, field.Required(hp, ""))
		}
		for j := range r.HTTP.Paths {
			errs = append(errs, validateHTTPIngressPath(&r.HTTP.Paths[j], hp.Index(j))...)
		}
	}
	for i, t := range ing.Spec.TLS {
		tp := sp.Child("tls").Index(i)
		for j, h := range t.Hosts {
			if strings.HasPrefix(h, "*") {
				for _, msg := range validation.IsWildcardDNS1123Subdomain(h) {
					errs = append(errs, field.Invalid(tp.Child("hosts").Index(j), h, msg))
				}
			} else {
				errs = append(errs, validateDNS1123Subdomain(h, tp.Child("hosts").Index(j))...)
			}
		}
		if t.SecretName != "" {
			errs = append(errs, validateDNS1123Subdomain(t.SecretName, tp.Child("secretName"))...)
		}
	}
	return errs
}

// validateIngressHost: "host is the fully qualified domain name of a
// network host, as defined by RFC 3986 ... IPs are not allowed ... may be
// prefixed with a wildcard label (e.g. "*.foo.com"); the wildcard
// character '*' must appear by itself as the first DNS label".
func validateIngressHost(h string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if _, err := netip.ParseAddr(h); err == nil {
		return append(errs, field.Invalid(fld, h, "must be a DNS name, not an IP address"))
	}
	if strings.Contains(h, "*") {
		for _, msg := range validation.IsWildcardDNS1123Subdomain(h) {
			errs = append(errs, field.Invalid(fld, h, msg))
		}
		return errs
	}
	return validateDNS1123Subdomain(h, fld)
}

var invalidPathSequences = []string{"//", "/./", "/../", "%2f", "%2F"}
var invalidPathSuffixes = []string{"/..", "/."}

func validateHTTPIngressPath(p *networkingv1.HTTPIngressPath, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case p.PathType == nil:
		errs = append(errs, field.Required(fld.Child("pathType"), "pathType must be specified"))
	case !slices.Contains(supportedPathTypes, *p.PathType):
		errs = append(errs, field.NotSupported(fld.Child("pathType"), *p.PathType, supportedPathTypes))
	case *p.PathType == networkingv1.PathTypeExact || *p.PathType == networkingv1.PathTypePrefix:
		if !strings.HasPrefix(p.Path, "/") {
			errs = append(errs, field.Invalid(fld.Child("path"), p.Path, "must be an absolute path"))
			break
		}
		for _, seq := range invalidPathSequences {
			if strings.Contains(p.Path, seq) {
				errs = append(errs, field.Invalid(fld.Child("path"), p.Path, "must not contain '"+seq+"'"))
			}
		}
		for _, suf := range invalidPathSuffixes {
			if strings.HasSuffix(p.Path, suf) {
				errs = append(errs, field.Invalid(fld.Child("path"), p.Path, "cannot end with '"+suf+"'"))
			}
		}
	case *p.PathType == networkingv1.PathTypeImplementationSpecific:
		if p.Path != "" && !strings.HasPrefix(p.Path, "/") {
			errs = append(errs, field.Invalid(fld.Child("path"), p.Path, "must be an absolute path"))
		}
	}
	return append(errs, validateIngressBackend(&p.Backend, fld.Child("backend"))...)
}

// validateIngressBackend: exactly one of service and resource; a service
// port is a number or a name, not both.
func validateIngressBackend(b *networkingv1.IngressBackend, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	hasService, hasResource := b.Service != nil, b.Resource != nil
	switch {
	case hasService && hasResource:
		return append(errs, field.Invalid(fld, "", "cannot set both resource and service backends"))
	case hasResource:
		rp := fld.Child("resource")
		if b.Resource.Kind == "" {
			errs = append(errs, field.Required(rp.Child("kind"), ""))
		}
		if b.Resource.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
	case hasService:
		sp := fld.Child("service")
		if b.Service.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), ""))
		} else {
			errs = append(errs, validateDNS1035Label(b.Service.Name, sp.Child("name"))...)
		}
		pp := sp.Child("port")
		port := b.Service.Port
		switch {
		case port.Name != "" && port.Number != 0:
			errs = append(errs, field.Invalid(pp, "", "cannot set both port name & port number"))
		case port.Name != "":
			errs = append(errs, validatePortNumOrName(intstr.FromString(port.Name), pp.Child("name"))...)
		case port.Number != 0:
			errs = append(errs, validatePortNum(port.Number, pp.Child("number"))...)
		default:
			errs = append(errs, field.Invalid(pp, "", "port name or number is required"))
		}
	default:
		errs = append(errs, field.Invalid(fld, "", "resource or service backend is required"))
	}
	return errs
}

func validateIngressClass(ic *networkingv1.IngressClass) field.ErrorList {
	errs := validateMeta(ic, apivalidation.NameIsDNSSubdomain)
	cp := field.NewPath("spec", "controller")
	if ic.Spec.Controller == "" {
		errs = append(errs, field.Required(cp, ""))
	} else {
		errs = append(errs, validation.IsDomainPrefixedPath(cp, ic.Spec.Controller)...)
		if len(ic.Spec.Controller) > 250 {
			errs = append(errs, field.TooLong(cp, "", 250))
		}
	}
	return errs
}

var supportedPolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}

// validateNetworkPolicy is ValidateNetworkPolicy.
func validateNetworkPolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	errs := validateMeta(np, apivalidation.NameIsDNSSubdomain)
	sp := field.NewPath("spec")
	errs = append(errs, validateLabelSelector(&np.Spec.PodSelector, sp.Child("podSelector"))...)
	for i, r := range np.Spec.Ingress {
		rp := sp.Child("ingress").Index(i)
		for j := range r.Ports {
			errs = append(errs, validateNetworkPolicyPort(&r.Ports[j], rp.Child("ports").Index(j))...)
		}
		for j := range r.From {
			errs = append(errs, validateNetworkPolicyPeer(&r.From[j], rp.Child("from").Index(j))...)
		}
	}
	for i, r := range np.Spec.Egress {
		rp := sp.Child("egress").Index(i)
		for j := range r.Ports {
			errs = append(errs, validateNetworkPolicyPort(&r.Ports[j], rp.Child("ports").Index(j))...)
		}
		for j := range r.To {
			errs = append(errs, validateNetworkPolicyPeer(&r.To[j], rp.Child("to").Index(j))...)
		}
	}
	if len(np.Spec.PolicyTypes) > len(supportedPolicyTypes) {
		errs = append(errs, field.Invalid(sp.Child("policyTypes"), np.Spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	for i, t := range np.Spec.PolicyTypes {
		if !slices.Contains(supportedPolicyTypes, t) {
			errs = append(errs, field.NotSupported(sp.Child("policyTypes").Index(i), t, supportedPolicyTypes))
		}
	}
	return errs
}

func validateNetworkPolicyPort(p *networkingv1.NetworkPolicyPort, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if p.Protocol != nil {
		errs = append(errs, validateProtocol(*p.Protocol, fld.Child("protocol"))...)
	}
	if p.Port != nil {
		errs = append(errs, validatePortNumOrName(*p.Port, fld.Child("port"))...)
	}
	if p.EndPort != nil {
		switch {
		case p.Port == nil:
			errs = append(errs, field.Required(fld.Child("port"), "must be specified when `endPort` is specified"))
		case p.Port.Type == intstr.String:
			errs = append(errs, field.Forbidden(fld.Child("endPort"), "may not be specified when `port` is non-numeric"))
		case *p.EndPort < p.Port.IntVal:
			errs = append(errs, field.Invalid(fld.Child("endPort"), *p.EndPort, "must be greater than or equal to `port`"))
		default:
			errs = append(errs, validatePortNum(*p.EndPort, fld.Child("endPort"))...)
		}
	}
	return errs
}

func validateNetworkPolicyPeer(p *networkingv1.NetworkPolicyPeer, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	if p.PodSelector != nil {
		n++
		errs = append(errs, validateLabelSelector(p.PodSelector, fld.Child("podSelector"))...)
	}
	if p.NamespaceSelector != nil {
		n++
		errs = append(errs, validateLabelSelector(p.NamespaceSelector, fld.Child("namespaceSelector"))...)
	}
	if p.IPBlock != nil {
		if n > 0 {
			errs = append(errs, field.Forbidden(fld, "may not specify both ipBlock and another peer"))
		}
		n++
		errs = append(errs, validateIPBlock(p.IPBlock, fld.Child("ipBlock"))...)
	}
	if n == 0 {
		errs = append(errs, field.Required(fld, "must specify a peer"))
	}
	return errs
}

// validateIPBlock: cidr is a CIDR and each except entry a strict subset.
func validateIPBlock(b *networkingv1.IPBlock, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if b.CIDR == "" {
		return append(errs, field.Required(fld.Child("cidr"), ""))
	}
	cidrErrs := validateCIDR(b.CIDR, fld.Child("cidr"))
	errs = append(errs, cidrErrs...)
	outer, err := netip.ParsePrefix(b.CIDR)
	for i, e := range b.Except {
		ep := fld.Child("except").Index(i)
		exErrs := validateCIDR(e, ep)
		errs = append(errs, exErrs...)
		inner, ierr := netip.ParsePrefix(e)
		if len(cidrErrs) == 0 && len(exErrs) == 0 && err == nil && ierr == nil {
			if !(outer.Bits() < inner.Bits() && outer.Contains(inner.Addr())) {
				errs = append(errs, field.Invalid(ep, e, "must be a strict subset of `cidr`"))
			}
		}
	}
	return errs
}
