package controllers

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/switchboard-dev/switchboard/cluster"
)

// dnsOffset is the address of the cluster DNS Service inside the service
// CIDR: the tenth, as kubeadm and every distribution use (10.96.0.10).
const dnsOffset = 10

// maxHostBits bounds the service CIDR as kube-apiserver does: "the mask
// must be >= 12" for IPv4 and >= 108 for IPv6, i.e. at most 2^20 addresses.
const maxHostBits = 20

// Allocator assigns Services their ClusterIP and node ports, as the API
// server's service registry does with its ipallocator and portallocator.
// It is a cluster.AdmitFunc (Admit) and runs under the store's lock: it
// keeps its own state, rebuilt from the Services it sees, and never calls
// the store. Wire it as the last admission step, after defaulting and
// validation, so that every object it admits is stored.
type Allocator struct {
	mu sync.Mutex

	cidr   netip.Prefix
	family corev1.IPFamily
	size   uint64 // addresses in the CIDR
	first  uint64 // first usable offset (the network address is never used)
	last   uint64 // last usable offset (the IPv4 broadcast is never used)
	static uint64 // offsets below this form the static band (preferred for requests)
	ips    map[uint64]string

	portMin, portMax int
	portStatic       int
	ports            map[int]string

	owned map[string]*allocation // service key -> what it holds
	rand  *rand.Rand

	ipAllocs, ipErrors, portAllocs, portErrors *prometheus.CounterVec
}

type allocation struct {
	ips   []uint64
	ports []int
}

// NewAllocator checks the configuration and returns an empty allocator.
func NewAllocator(cfg Config) (*Allocator, error) {
	cfg = cfg.withDefaults()
	p := cfg.ServiceCIDR
	if !p.IsValid() {
		return nil, fmt.Errorf("service CIDR: not set")
	}
	p = p.Masked()
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits > maxHostBits {
		return nil, fmt.Errorf("service CIDR %s is too large: at most 2^%d addresses (/%d for IPv4, /%d for IPv6)",
			cfg.ServiceCIDR, maxHostBits, 32-maxHostBits, 128-maxHostBits)
	}
	a := &Allocator{
		cidr:  p,
		size:  uint64(1) << hostBits,
		first: 1,
		ips:   map[uint64]string{},
		ports: map[int]string{},
		owned: map[string]*allocation{},
		rand:  rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	a.family = corev1.IPv4Protocol
	a.last = a.size - 2 // IPv4: the broadcast address is never used
	if p.Addr().Is6() && !p.Addr().Is4In6() {
		a.family = corev1.IPv6Protocol
		a.last = a.size - 1
	}
	if a.last < dnsOffset {
		return nil, fmt.Errorf("service CIDR %s is too small: it must hold the cluster DNS address (its tenth address)", cfg.ServiceCIDR)
	}
	// As upstream's ipallocator: the static band is the first
	// min(max(16, size/16), 256) addresses; dynamic allocation prefers the
	// addresses above it, so that addresses users pick stay free.
	a.static = min(max(16, a.size/16), 256)
	lo, hi := cfg.NodePortRange[0], cfg.NodePortRange[1]
	if lo < 1 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("node port range %d-%d: must be a range inside 1-65535", lo, hi)
	}
	a.portMin, a.portMax = lo, hi
	// portallocator's static band: min(max(16, size/32), 128) ports.
	a.portStatic = min(max(16, (hi-lo+1)/32), 128)

	reg := cfg.Registerer
	cidrLabel := prometheus.Labels{"cidr": p.String()}
	a.ipAllocs = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kube_apiserver_clusterip_allocator_allocation_total", Help: "Number of Cluster IPs allocations",
	}, []string{"cidr", "scope"}))
	a.ipErrors = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kube_apiserver_clusterip_allocator_allocation_errors_total", Help: "Number of errors trying to allocate Cluster IPs",
	}, []string{"cidr", "scope"}))
	a.portAllocs = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kube_apiserver_nodeport_allocator_allocation_total", Help: "Number of NodePort allocations",
	}, []string{"scope"}))
	a.portErrors = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kube_apiserver_nodeport_allocator_allocation_errors_total", Help: "Number of errors trying to allocate NodePort",
	}, []string{"scope"}))
	if reg != nil {
		gauge := func(name, help string, labels prometheus.Labels, f func() float64) {
			_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
		}
		gauge("kube_apiserver_clusterip_allocator_allocated_ips", "Gauge measuring the number of allocated IPs for Services", cidrLabel,
			func() float64 { a.mu.Lock(); defer a.mu.Unlock(); return float64(len(a.ips)) })
		gauge("kube_apiserver_clusterip_allocator_available_ips", "Gauge measuring the number of available IPs for Services", cidrLabel,
			func() float64 {
				a.mu.Lock()
				defer a.mu.Unlock()
				return float64(a.last-a.first+1) - float64(len(a.ips))
			})
		gauge("kube_apiserver_nodeport_allocator_allocated_ports", "Gauge measuring the number of allocated NodePorts for Services", nil,
			func() float64 { a.mu.Lock(); defer a.mu.Unlock(); return float64(len(a.ports)) })
		gauge("kube_apiserver_nodeport_allocator_available_ports", "Gauge measuring the number of available NodePorts for Services", nil,
			func() float64 {
				a.mu.Lock()
				defer a.mu.Unlock()
				return float64(a.portMax - a.portMin + 1 - len(a.ports))
			})
	}
	return a, nil
}

// DNSServiceIP is the address reserved for kube-system/kube-dns: the
// service CIDR's tenth address (127.96.0.10 for 127.96.0.0/16).
func (a *Allocator) DNSServiceIP() netip.Addr { return a.addrAt(dnsOffset) }

// ServiceCIDR is the range addresses come from.
func (a *Allocator) ServiceCIDR() netip.Prefix { return a.cidr }

// addrAt is the address at offset off from the CIDR's network address.
func (a *Allocator) addrAt(off uint64) netip.Addr {
	if a.cidr.Addr().Is4() {
		b := a.cidr.Addr().As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		v += uint32(off)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	b := a.cidr.Addr().As16()
	carry := off
	for i := 15; i >= 0 && carry > 0; i-- {
		s := uint64(b[i]) + carry&0xff
		b[i] = byte(s)
		carry = carry>>8 + s>>8
	}
	return netip.AddrFrom16(b)
}

// offsetOf is the offset of addr inside the CIDR (addr must be inside).
func (a *Allocator) offsetOf(addr netip.Addr) uint64 {
	var b []byte
	if a.cidr.Addr().Is4() {
		x := addr.As4()
		b = x[:]
	} else {
		x := addr.As16()
		b = x[:]
	}
	var off uint64
	for _, x := range b[len(b)-3:] { // host bits <= 20 fit in three bytes
		off = off<<8 | uint64(x)
	}
	return off & (a.size - 1)
}

// Admit is the allocator's admission step (a cluster.AdmitFunc). It only
// looks at Services: on create and update it allocates and releases what
// the Service needs and fills in spec.clusterIP(s), ipFamilies,
// ipFamilyPolicy, ports[].nodePort and healthCheckNodePort; on delete it
// releases everything the Service held.
func (a *Allocator) Admit(op cluster.Operation, obj, old cluster.Object) error {
	switch op {
	case cluster.OpDelete:
		if svc, ok := old.(*corev1.Service); ok {
			a.mu.Lock()
			a.releaseLocked(cluster.KeyOf(svc))
			a.mu.Unlock()
		}
		return nil
	case cluster.OpCreate, cluster.OpUpdate:
		svc, ok := obj.(*corev1.Service)
		if !ok {
			return nil
		}
		oldSvc, _ := old.(*corev1.Service)
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.admitLocked(svc, oldSvc)
	}
	return nil
}

func (a *Allocator) releaseLocked(key string) {
	al := a.owned[key]
	if al == nil {
		return
	}
	for _, off := range al.ips {
		if a.ips[off] == key {
			delete(a.ips, off)
		}
	}
	for _, p := range al.ports {
		if a.ports[p] == key {
			delete(a.ports, p)
		}
	}
	delete(a.owned, key)
}

func isDNSService(svc *corev1.Service) bool {
	return svc.Namespace == "kube-system" && svc.Name == "kube-dns"
}

// needsClusterIP is upstream's: every type but ExternalName has a
// clusterIP field (a headless Service's is "None").
func needsClusterIP(svc *corev1.Service) bool { return svc.Spec.Type != corev1.ServiceTypeExternalName }

func allowsNodePorts(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// shouldAllocateNodePorts: NodePort always; LoadBalancer unless
// spec.allocateLoadBalancerNodePorts is false.
func shouldAllocateNodePorts(svc *corev1.Service) bool {
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		return true
	case corev1.ServiceTypeLoadBalancer:
		return svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts
	}
	return false
}

// needsHealthCheck is upstream's apiservice.NeedsHealthCheck: a
// LoadBalancer Service with externalTrafficPolicy Local.
func needsHealthCheck(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// dropTypeDependentFields is upstream's: when the type changes so that a
// field no longer applies and the client left it as it was (a
// read-modify-write of the old object), the field is cleared instead of
// failing validation, and what it held is released.
func dropTypeDependentFields(svc, old *corev1.Service) {
	if needsClusterIP(old) && !needsClusterIP(svc) && svc.Spec.ClusterIP == old.Spec.ClusterIP {
		svc.Spec.ClusterIP = ""
		svc.Spec.ClusterIPs = nil
		svc.Spec.IPFamilies = nil
		svc.Spec.IPFamilyPolicy = nil
	}
	if allowsNodePorts(old) && !allowsNodePorts(svc) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			for _, op := range old.Spec.Ports {
				if op.NodePort == p.NodePort {
					p.NodePort = 0
					break
				}
			}
		}
	}
	if needsHealthCheck(old) && !needsHealthCheck(svc) && svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
		svc.Spec.HealthCheckNodePort = 0
	}
}

// patchAllocatedValues is upstream's: an update that leaves out what was
// allocated (kubectl apply of the original manifest) keeps it.
func patchAllocatedValues(svc, old *corev1.Service) {
	if needsClusterIP(old) && needsClusterIP(svc) {
		if svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) == 0 {
			svc.Spec.ClusterIP = old.Spec.ClusterIP
			svc.Spec.ClusterIPs = append([]string(nil), old.Spec.ClusterIPs...)
		}
		if len(svc.Spec.IPFamilies) == 0 {
			svc.Spec.IPFamilies = append([]corev1.IPFamily(nil), old.Spec.IPFamilies...)
		}
		if svc.Spec.IPFamilyPolicy == nil && old.Spec.IPFamilyPolicy != nil {
			p := *old.Spec.IPFamilyPolicy
			svc.Spec.IPFamilyPolicy = &p
		}
	}
	if allowsNodePorts(old) && allowsNodePorts(svc) {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			if p.NodePort != 0 {
				continue
			}
			for _, op := range old.Spec.Ports {
				if op.Port == p.Port && op.Protocol == p.Protocol && op.NodePort != 0 {
					p.NodePort = op.NodePort
					break
				}
			}
		}
	}
	if needsHealthCheck(old) && needsHealthCheck(svc) && svc.Spec.HealthCheckNodePort == 0 {
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
	}
}

var (
	specPath      = field.NewPath("spec")
	clusterIPPath = specPath.Child("clusterIP")
	clusterIPs0   = specPath.Child("clusterIPs").Index(0)
)

func (a *Allocator) admitLocked(svc, old *corev1.Service) error {
	key := cluster.KeyOf(svc)
	if old != nil {
		dropTypeDependentFields(svc, old)
		patchAllocatedValues(svc, old)
	}
	var errs field.ErrorList
	var newAl allocation
	// taken reports whether a resource is held by another Service.
	ipTaken := func(off uint64) bool { o, ok := a.ips[off]; return ok && o != key }
	portTaken := func(p int) bool { o, ok := a.ports[p]; return ok && o != key }

	// Cluster IP.
	assignIP := uint64(0)
	assignNew := false
	if !needsClusterIP(svc) {
		if svc.Spec.ClusterIP != "" || len(svc.Spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(specPath.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		svc.Spec.IPFamilies = nil
		svc.Spec.IPFamilyPolicy = nil
	} else {
		ip := svc.Spec.ClusterIP
		if ip == "" && len(svc.Spec.ClusterIPs) > 0 {
			ip = svc.Spec.ClusterIPs[0]
		}
		if len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] != ip {
			errs = append(errs, field.Invalid(clusterIPs0, svc.Spec.ClusterIPs[0], "must match `clusterIP`"))
		}
		if len(svc.Spec.ClusterIPs) > 1 {
			errs = append(errs, field.Invalid(specPath.Child("clusterIPs").Index(1), svc.Spec.ClusterIPs[1],
				fmt.Sprintf("this cluster is single-stack (%s): a Service has one cluster IP", a.family)))
		}
		// A headless Service without a selector allocates nothing: the API
		// server returns before its family checks (alloc.go), so the
		// RequireDualStack [IPv4, IPv6] that defaulting gives such a
		// Service is accepted on a single-stack cluster too.
		headlessNoSelector := ip == corev1.ClusterIPNone && len(svc.Spec.Selector) == 0
		if p := svc.Spec.IPFamilyPolicy; p != nil && *p == corev1.IPFamilyPolicyRequireDualStack && !headlessNoSelector {
			errs = append(errs, field.Invalid(specPath.Child("ipFamilyPolicy"), *p, "this cluster is not configured for dual-stack services"))
		}
		for i, f := range svc.Spec.IPFamilies {
			if headlessNoSelector {
				break
			}
			if i > 0 && svc.Spec.IPFamilyPolicy != nil && *svc.Spec.IPFamilyPolicy == corev1.IPFamilyPolicyPreferDualStack {
				break
			}
			if f != a.family {
				errs = append(errs, field.Invalid(specPath.Child("ipFamilies").Index(i), f, "not configured on this cluster"))
			}
		}
		if old != nil && needsClusterIP(old) && old.Spec.ClusterIP != "" && ip != old.Spec.ClusterIP {
			errs = append(errs, apivalidation.ValidateImmutableField(ip, old.Spec.ClusterIP, clusterIPPath)...)
		}
		switch {
		case ip == corev1.ClusterIPNone:
			// Headless: no address.
		case ip == "":
			assignNew = true
		default:
			addr, err := netip.ParseAddr(ip)
			switch {
			case err != nil:
				errs = append(errs, field.Invalid(clusterIPs0, ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
			case !a.cidr.Contains(addr.Unmap()) || a.offsetOf(addr.Unmap()) < a.first || a.offsetOf(addr.Unmap()) > a.last:
				errs = append(errs, field.Invalid(clusterIPs0, ip, fmt.Sprintf(
					"failed to allocate IP %s: provided IP is not in the valid range. The range of valid IPs is %s", ip, a.cidr)))
			default:
				off := a.offsetOf(addr.Unmap())
				switch {
				case off == dnsOffset && !isDNSService(svc):
					errs = append(errs, field.Invalid(clusterIPs0, ip, fmt.Sprintf(
						"failed to allocate IP %s: provided IP is reserved for the cluster DNS Service kube-system/kube-dns", ip)))
				case ipTaken(off):
					errs = append(errs, field.Invalid(clusterIPs0, ip, fmt.Sprintf(
						"failed to allocate IP %s: provided IP is already allocated", ip)))
				default:
					assignIP = off
				}
			}
		}
	}

	// Node ports, as upstream's initNodePorts/updateNodePorts: a port
	// number used with two protocols shares one node port.
	type portReq struct{ idx int }
	var nodePortErrs field.ErrorList
	used := map[int]bool{}      // node ports this Service will hold
	byProto := map[string]int{} // "nodePort/protocol" -> index, for duplicates
	svcPortToNodePort := map[int32]int{}
	var toAllocate []portReq
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		path := specPath.Child("ports").Index(i).Child("nodePort")
		if !allowsNodePorts(svc) {
			if p.NodePort != 0 {
				nodePortErrs = append(nodePortErrs, field.Forbidden(path, fmt.Sprintf("may not be used when `type` is '%s'", typeName(svc))))
			}
			continue
		}
		if p.NodePort != 0 {
			np := int(p.NodePort)
			k := strconv.Itoa(np) + "/" + string(p.Protocol)
			if _, dup := byProto[k]; dup {
				nodePortErrs = append(nodePortErrs, field.Duplicate(path, np))
				continue
			}
			byProto[k] = i
			switch {
			case np < a.portMin || np > a.portMax:
				nodePortErrs = append(nodePortErrs, field.Invalid(path, np, fmt.Sprintf(
					"provided port is not in the valid range. The range of valid ports is %d-%d", a.portMin, a.portMax)))
				a.portErrors.WithLabelValues("static").Inc()
			case portTaken(np):
				nodePortErrs = append(nodePortErrs, field.Invalid(path, np, "provided port is already allocated"))
				a.portErrors.WithLabelValues("static").Inc()
			default:
				used[np] = true
				if _, ok := svcPortToNodePort[p.Port]; !ok {
					svcPortToNodePort[p.Port] = np
				}
			}
			continue
		}
		if shouldAllocateNodePorts(svc) {
			toAllocate = append(toAllocate, portReq{idx: i})
		}
	}
	errs = append(errs, nodePortErrs...)
	hcPath := specPath.Child("healthCheckNodePort")
	hc := int(svc.Spec.HealthCheckNodePort)
	if hc != 0 {
		switch {
		case !needsHealthCheck(svc):
			errs = append(errs, field.Invalid(hcPath, hc, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
		case hc < a.portMin || hc > a.portMax:
			errs = append(errs, field.Invalid(hcPath, hc, fmt.Sprintf(
				"provided port is not in the valid range. The range of valid ports is %d-%d", a.portMin, a.portMax)))
		case portTaken(hc) || used[hc]:
			errs = append(errs, field.Invalid(hcPath, hc, "provided port is already allocated"))
		default:
			used[hc] = true
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			switch e.Field {
			case clusterIPs0.String():
				a.ipErrors.WithLabelValues(a.cidr.String(), "static").Inc()
			case hcPath.String():
				a.portErrors.WithLabelValues("static").Inc()
			}
		}
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, svc.Name, errs)
	}

	// Everything requested is valid: allocate what is new.
	if assignNew {
		off, ok := a.pickIP(svc, key)
		if !ok {
			a.ipErrors.WithLabelValues(a.cidr.String(), "dynamic").Inc()
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range is full (no free address left in %s)", a.cidr))
		}
		a.ipAllocs.WithLabelValues(a.cidr.String(), "dynamic").Inc()
		assignIP = off
	}
	free := func(p int) bool { return !portTaken(p) && !used[p] }
	for _, r := range toAllocate {
		p := &svc.Spec.Ports[r.idx]
		if np, ok := svcPortToNodePort[p.Port]; ok {
			p.NodePort = int32(np)
			continue
		}
		np, ok := a.pickPort(free)
		if !ok {
			a.portErrors.WithLabelValues("dynamic").Inc()
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range is full (no free port left in %d-%d)", a.portMin, a.portMax))
		}
		a.portAllocs.WithLabelValues("dynamic").Inc()
		used[np] = true
		svcPortToNodePort[p.Port] = np
		p.NodePort = int32(np)
	}
	if needsHealthCheck(svc) && svc.Spec.HealthCheckNodePort == 0 {
		np, ok := a.pickPort(free)
		if !ok {
			a.portErrors.WithLabelValues("dynamic").Inc()
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range is full (no free port left in %d-%d)", a.portMin, a.portMax))
		}
		a.portAllocs.WithLabelValues("dynamic").Inc()
		used[np] = true
		svc.Spec.HealthCheckNodePort = int32(np)
	}

	// Fill in the fields.
	if needsClusterIP(svc) {
		if assignIP != 0 {
			ip := a.addrAt(assignIP).String()
			svc.Spec.ClusterIP = ip
			svc.Spec.ClusterIPs = []string{ip}
			newAl.ips = []uint64{assignIP}
		} else { // headless
			svc.Spec.ClusterIP = corev1.ClusterIPNone
			svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
		}
		svc.Spec.IPFamilies = []corev1.IPFamily{a.family}
		if svc.Spec.IPFamilyPolicy == nil {
			p := corev1.IPFamilyPolicySingleStack
			svc.Spec.IPFamilyPolicy = &p
		}
	}
	for p := range used {
		newAl.ports = append(newAl.ports, p)
	}

	// Commit: release what is no longer held, then take the new set.
	if !assignNew {
		for _, off := range newAl.ips {
			if a.ips[off] != key {
				a.ipAllocs.WithLabelValues(a.cidr.String(), "static").Inc()
			}
		}
	}
	a.releaseLocked(key)
	for _, off := range newAl.ips {
		a.ips[off] = key
	}
	for _, p := range newAl.ports {
		a.ports[p] = key
	}
	if len(newAl.ips)+len(newAl.ports) > 0 {
		a.owned[key] = &newAl
	}
	return nil
}

func typeName(svc *corev1.Service) string {
	if svc.Spec.Type == "" {
		return string(corev1.ServiceTypeClusterIP)
	}
	return string(svc.Spec.Type)
}

// pickIP chooses a free address: kube-system/kube-dns gets the tenth when
// it is free; everyone else a random free address, first from the dynamic
// band (above the static band), then from the static band, as upstream.
func (a *Allocator) pickIP(svc *corev1.Service, key string) (uint64, bool) {
	free := func(off uint64) bool {
		o, ok := a.ips[off]
		return off != dnsOffset && (!ok || o == key)
	}
	if isDNSService(svc) {
		if o, ok := a.ips[dnsOffset]; !ok || o == key {
			return dnsOffset, true
		}
	}
	lo, hi := a.static, a.last
	if lo > hi {
		lo = a.first
	}
	if off, ok := scan(a.rand, lo, hi, free); ok {
		return off, true
	}
	if lo > a.first {
		return scan(a.rand, a.first, lo-1, free)
	}
	return 0, false
}

func (a *Allocator) pickPort(free func(int) bool) (int, bool) {
	lo, hi := a.portMin+a.portStatic, a.portMax
	if lo > hi {
		lo = a.portMin
	}
	f := func(v uint64) bool { return free(int(v)) }
	if v, ok := scan(a.rand, uint64(lo), uint64(hi), f); ok {
		return int(v), true
	}
	if lo > a.portMin {
		v, ok := scan(a.rand, uint64(a.portMin), uint64(lo-1), f)
		return int(v), ok
	}
	return 0, false
}

// scan looks for a free value in [lo, hi] starting at a random one.
func scan(r *rand.Rand, lo, hi uint64, free func(uint64) bool) (uint64, bool) {
	n := hi - lo + 1
	start := r.Uint64N(n)
	for i := range n {
		v := lo + (start+i)%n
		if free(v) {
			return v, true
		}
	}
	return 0, false
}
