package kubernetes

import (
	"math/bits"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Versions: the plugin implements plugin.Versioned so that the cache in
// front of it drops an answer as soon as the records behind it change,
// instead of serving it until its TTL runs out ("Records follow the store:
// a service created, changed or deleted is answered accordingly within one
// second, with no restart").
//
// A name is mapped to counters by its labels under the zone, without
// allocating:
//
//	<x>.<service>.<ns>.svc.<zone>, <service>.<ns>.svc.<zone>
//	    epoch + ns[<ns>] + key[<service>, <ns>]
//	<x>.<ns>.pod.<zone>
//	    epoch + ns[<ns>] + pod[<ns>]
//	<ns>.svc.<zone>, <ns>.pod.<zone>
//	    epoch + ns[<ns>]
//	reverse names of an address (in-addr.arpa., ip6.arpa.)
//	    epoch + rev + ip[<address>]
//	other reverse names
//	    epoch + rev
//	anything else in the zone (the apex with its NS records, ns.dns,
//	dns-version, svc.<zone>, names that are not of the schema)
//	    epoch + all
//
// The index's builder bumps, after publishing a batch: key[<service>, <ns>]
// for every Service or EndpointSlice event of that service; ns[<ns>] when
// the namespace appears or disappears (or stops matching
// namespace_labels); pod[<ns>] when a pod's indexed address in ns changes
// (pods verified); ip[<address>] when the services or ready endpoints
// holding a cluster IP or endpoint address changed; rev when namespaces
// changed (PTR records honour `namespaces`); all with any change; epoch once the initial lists are indexed
// (every NXDOMAIN that was SERVFAIL before). An ExternalName service whose
// target names a namespace (the labels "<ns>.svc" or "<ns>.pod" in the
// target) gets its key bumped along with every change in that namespace,
// transitively, since its answer carries the target's records.
//
// The per-namespace and per-service counters are buckets chosen by a hash
// of the name: two names in one bucket only cost a spurious miss. Every
// counter only grows, so a sum changes whenever one of its terms does.
// The SOA serial (the time of the last change) is not versioned: a cached
// denial keeps the serial it was answered with, as in any cache.
const (
	nsBuckets  = 1 << 10
	keyBuckets = 1 << 14
)

// versions are the counters of one index.
type versions struct {
	epoch atomic.Uint64
	all   atomic.Uint64
	rev   atomic.Uint64
	ns    []atomic.Uint64 // by nameHash(<ns>)
	pod   []atomic.Uint64 // by nameHash(<ns>)
	key   []atomic.Uint64 // by keyHash(<ns>, <service>)
	ip    []atomic.Uint64 // by hashIP(<address>)
}

// indexSerial makes the versions of every index distinct: a plugin that
// moves from one index to another (Start) never reports an old number.
var indexSerial atomic.Uint64

func newVersions(buckets, keys int) *versions {
	v := &versions{
		ns:  make([]atomic.Uint64, buckets),
		pod: make([]atomic.Uint64, buckets),
		key: make([]atomic.Uint64, keys),
		ip:  make([]atomic.Uint64, keys),
	}
	v.epoch.Store(indexSerial.Add(1) << 40)
	return v
}

// nameHash hashes s with every byte OR 0x20, so that the index (lower-case
// object names) and the questions (any case) pick the same bucket: upper-
// and lower-case letters hash alike, and the few other bytes folded onto
// each other only share buckets. It reads eight bytes at a time and is
// not seeded: a client choosing colliding names only causes cache misses.
func nameHash(s string) uint64 {
	const fold = 0x2020202020202020
	h := uint64(len(s)) * 0x9e3779b97f4a7c15
	for len(s) >= 8 {
		h = bits.RotateLeft64((h^(load64(s)|fold))*0xff51afd7ed558ccd, 31)
		s = s[8:]
	}
	var w uint64
	switch n := len(s); {
	case n >= 4: // two loads that may overlap
		w = uint64(load32(s)) | uint64(load32(s[n-4:]))<<32
	case n > 0:
		w = uint64(s[0]) | uint64(s[n/2])<<8 | uint64(s[n-1])<<16
	}
	if len(s) > 0 {
		h = bits.RotateLeft64((h^(w|fold))*0xff51afd7ed558ccd, 31)
	}
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>29
}

// keyHash is the hash of the service key <service>.<ns> from the hash
// of the namespace, so that a question hashes its namespace label once.
func keyHash(nsHash uint64, service string) uint64 {
	return nameHash(service) ^ bits.RotateLeft64(nsHash, 23)
}

func keyHashOf(key string) uint64 {
	i := strings.LastIndexByte(key, '.')
	return keyHash(nameHash(key[i+1:]), key[:max(i, 0)])
}

func bucket(b []atomic.Uint64, h uint64) *atomic.Uint64 {
	return &b[h&uint64(len(b)-1)]
}

// of is the version of name (any case, fully qualified) in a zone that
// is its last zoneLen bytes.
func (v *versions) of(name string, zoneLen int) uint64 {
	e := v.epoch.Load()
	if a, isAddr, reverse := reverseFold(name); reverse {
		e += v.rev.Load()
		if isAddr {
			e += bucket(v.ip, hashIP(ipKeyOf(a))).Load()
		}
		return e
	}
	base := name[:len(name)-zoneLen]
	if len(base) > 0 && base[len(base)-1] == '.' {
		base = base[:len(base)-1]
	}
	// The last three dots of base split it, as query.parse does, into
	// ... <service> . <ns> . <svc|pod>.
	d1 := len(base) - 1
	for d1 >= 0 && base[d1] != '.' {
		d1--
	}
	if d1 < 0 {
		return e + v.all.Load() // the apex, svc, pod, or not of the schema
	}
	isSvc := isLabel(base[d1+1:], 's', 'v', 'c')
	if !isSvc && !isLabel(base[d1+1:], 'p', 'o', 'd') {
		return e + v.all.Load()
	}
	d2 := d1 - 1
	for d2 >= 0 && base[d2] != '.' {
		d2--
	}
	nh := nameHash(base[d2+1 : d1]) // the namespace; d2 is -1 for <ns>.svc|pod
	e += bucket(v.ns, nh).Load()
	switch {
	case d2 < 0:
		return e // <ns>.svc|pod.<zone>
	case !isSvc:
		return e + bucket(v.pod, nh).Load()
	}
	d3 := d2 - 1
	for d3 >= 0 && base[d3] != '.' {
		d3--
	}
	return e + bucket(v.key, keyHash(nh, base[d3+1:d2])).Load() // <service>.<ns>
}

// reverseFold tells whether name (any case) is under in-addr.arpa. or
// ip6.arpa. (isReverse) and if so, whether it names an address (as
// reverseAddr reads it).
func reverseFold(name string) (a netip.Addr, isAddr, reverse bool) {
	if !hasSuffixFold(name, "arpa.") {
		return a, false, false
	}
	switch {
	case hasSuffixFold(name, ".in-addr.arpa."):
		a, isAddr = parseReverse4(name[:len(name)-len(".in-addr.arpa.")])
	case hasSuffixFold(name, ".ip6.arpa."):
		a, isAddr = parseReverse6(name[:len(name)-len(".ip6.arpa.")])
	default:
		return a, false, false
	}
	return a, isAddr, true
}

// isLabel tells whether l is the three letters a, b, c in any case.
func isLabel(l string, a, b, c byte) bool {
	return len(l) == 3 && l[0]|0x20 == a && l[1]|0x20 == b && l[2]|0x20 == c
}

// hasSuffixFold tells whether s ends with suffix (lower case) in any
// letter case. Bytes are compared eight at a time with 0x20 set in each,
// which is exact for the printable bytes of a name (those that differ
// only in that bit are upper- and lower-case letters, or a byte and one
// that is escaped in presentation format): a zone a name is in always
// matches, and the rest cannot occur.
func hasSuffixFold(s, suffix string) bool {
	if len(s) < len(suffix) {
		return false
	}
	s = s[len(s)-len(suffix):]
	const fold, fold32 = 0x2020202020202020, 0x20202020
	switch n := len(s); {
	case n >= 8: // words: the last first (names differ most at their end), overlapping the others
		if load64(s[n-8:])|fold != load64(suffix[n-8:])|fold {
			return false
		}
		for i := 0; i+8 < n; i += 8 {
			if load64(s[i:])|fold != load64(suffix[i:])|fold {
				return false
			}
		}
		return true
	case n >= 4:
		return load32(s)|fold32 == load32(suffix)|fold32 && load32(s[n-4:])|fold32 == load32(suffix[n-4:])|fold32
	}
	for i := 0; i < len(s); i++ {
		if s[i]|0x20 != suffix[i]|0x20 {
			return false
		}
	}
	return true
}

func load32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func load64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// Version implements plugin.Versioned: a number that changes whenever the
// answer for qname may have changed; 0 for names outside the plugin's
// zones. It allocates nothing and takes no lock.
func (k *Kubernetes) Version(qname string) uint64 {
	if !strings.HasSuffix(qname, ".") {
		qname += "." // never for a question from the wire; as ServeDNS does
	}
	best := -1
	for i, z := range k.Zones {
		if (best < 0 || len(z) > len(k.Zones[best])) && inZoneFold(qname, z) {
			best = i
		}
	}
	if best < 0 {
		return 0
	}
	return k.ix().ver.of(qname, len(k.Zones[best]))
}

// inZoneFold is inZone for a name in any case.
func inZoneFold(name, zone string) bool {
	if zone == "." {
		return true
	}
	if !hasSuffixFold(name, zone) {
		return false
	}
	return len(name) == len(zone) || name[len(name)-len(zone)-1] == '.'
}

// bumps are what one batch of the builder changed, bumped after the batch
// is published (bumpVersions).
type bumps struct {
	ips  map[ipKey]struct{}  // cluster IPs and endpoint addresses
	keys map[string]struct{} // service keys <service>.<ns>
	ns   map[string]struct{} // namespaces appeared or gone
	pods map[string]struct{} // namespaces whose pod addresses changed
}

func newBumps() bumps {
	return bumps{ips: map[ipKey]struct{}{}, keys: map[string]struct{}{}, ns: map[string]struct{}{}, pods: map[string]struct{}{}}
}

// emptied empties a set for the next batch. A Go map keeps the size it
// grew to: one that a big batch (the initial lists: every address) grew
// is dropped rather than kept, empty, for the life of the index.
func emptied[K comparable](m map[K]struct{}) map[K]struct{} {
	if len(m) > 1024 {
		return map[K]struct{}{}
	}
	clear(m)
	return m
}

func (b *bumps) empty() bool { return len(b.keys)+len(b.ns)+len(b.pods) == 0 }

// touchIP records that the PTR records of k may have changed.
func (x *index) touchIP(k ipKey) { x.bumps.ips[k] = struct{}{} }

// keyNamespace is the namespace of a service key (namespaces hold no dot).
func keyNamespace(key string) string { return key[strings.LastIndexByte(key, '.')+1:] }

// targetNamespaces lists every label of an ExternalName target that is
// followed by "svc" or "pod": the namespaces the target may name in
// whatever zone (the index does not know its plugins' zones).
func targetNamespaces(target string) []string {
	labels := strings.Split(strings.TrimSuffix(strings.ToLower(target), "."), ".")
	var out []string
	for i := 0; i+1 < len(labels); i++ {
		if (labels[i+1] == "svc" || labels[i+1] == "pod") && labels[i] != "" {
			out = append(out, labels[i])
		}
	}
	return out
}

// trackExternal records which namespaces the answer of service key
// depends on besides its own: those its ExternalName target may name.
func (x *index) trackExternal(key string, s *service) {
	for _, ns := range x.extOf[key] {
		if set := x.extDeps[ns]; set != nil {
			delete(set, key)
			if len(set) == 0 {
				delete(x.extDeps, ns)
			}
		}
	}
	delete(x.extOf, key)
	if s == nil || s.kind != kindExternalName {
		return
	}
	nss := targetNamespaces(s.external)
	if len(nss) == 0 {
		return
	}
	x.extOf[key] = nss
	for _, ns := range nss {
		if x.extDeps[ns] == nil {
			x.extDeps[ns] = map[string]struct{}{}
		}
		x.extDeps[ns][key] = struct{}{}
	}
}

// bumpVersions makes the changes of a published batch visible to
// Version: it must run after the publication, so that a reader who sees
// a new number also sees the new records.
func (x *index) bumpVersions(changed, reverse, synced bool) {
	b := &x.bumps
	if !b.empty() {
		// The ExternalName services that may point into a changed
		// namespace change with it, and so on along CNAME chains.
		var queue []string
		for ns := range b.ns {
			queue = append(queue, ns)
		}
		for ns := range b.pods {
			queue = append(queue, ns)
		}
		for key := range b.keys {
			queue = append(queue, keyNamespace(key))
		}
		seen := map[string]bool{}
		for len(queue) > 0 {
			ns := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			if seen[ns] {
				continue
			}
			seen[ns] = true
			for key := range x.extDeps[ns] {
				if _, ok := b.keys[key]; !ok {
					b.keys[key] = struct{}{}
					queue = append(queue, keyNamespace(key))
				}
			}
		}
	}
	v := x.ver
	for key := range b.keys {
		bucket(v.key, keyHashOf(key)).Add(1)
	}
	for ns := range b.ns {
		bucket(v.ns, nameHash(ns)).Add(1)
	}
	for ns := range b.pods {
		bucket(v.pod, nameHash(ns)).Add(1)
	}
	for k := range b.ips {
		bucket(v.ip, hashIP(k)).Add(1)
	}
	b.keys, b.ns, b.pods, b.ips = emptied(b.keys), emptied(b.ns), emptied(b.pods), emptied(b.ips)
	if reverse {
		v.rev.Add(1)
	}
	if changed {
		v.all.Add(1)
	}
	if synced {
		v.epoch.Add(1)
	}
}
