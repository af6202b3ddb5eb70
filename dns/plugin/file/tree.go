package file

import (
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// elem holds the records of one owner name.
type elem struct {
	name string // owner name as the first record inserted had it
	key  string // canonical key: lower case, escapes normalized
	m    map[uint16][]dns.RR
}

// Type returns the records of type qtype (shared: do not change them).
func (e *elem) Type(qtype uint16) []dns.RR { return e.m[qtype] }

// Name is the owner name.
func (e *elem) Name() string { return e.name }

// TypeForWildcard returns copies of the records of type qtype with their
// owner name set to qname.
func (e *elem) TypeForWildcard(qtype uint16, qname string) []dns.RR {
	rrs := e.m[qtype]
	if rrs == nil {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i := range rrs {
		out[i] = dns.Copy(rrs[i])
		out[i].Header().Name = qname
	}
	return out
}

// tree is a zone's records by owner name. It is built once (insert, then
// finish) and only read afterwards: a reload builds a new one.
type tree struct {
	byKey  map[string]*elem
	sorted []*elem // in DNSSEC canonical order (RFC 4034 section 6.1)
}

func newTree() *tree { return &tree{byKey: map[string]*elem{}} }

// Len is the number of owner names.
func (t *tree) Len() int { return len(t.byKey) }

func (t *tree) insert(rr dns.RR) {
	name := rr.Header().Name
	k := canon(name)
	e, ok := t.byKey[k]
	if !ok {
		e = &elem{name: name, key: k, m: map[uint16][]dns.RR{}}
		t.byKey[k] = e
	}
	typ := rr.Header().Rrtype
	e.m[typ] = append(e.m[typ], rr)
}

// finish orders the names for Prev and Next.
func (t *tree) finish() {
	t.sorted = make([]*elem, 0, len(t.byKey))
	for _, e := range t.byKey {
		t.sorted = append(t.sorted, e)
	}
	sort.Slice(t.sorted, func(i, j int) bool { return compareNames(t.sorted[i].key, t.sorted[j].key) < 0 })
}

// Search returns the element of qname, any case.
func (t *tree) Search(qname string) (*elem, bool) {
	e, ok := t.byKey[canon(qname)]
	return e, ok
}

// Prev returns the greatest element equal to or less than qname in
// canonical order.
func (t *tree) Prev(qname string) (*elem, bool) {
	k := canon(qname)
	// first index whose key is > k
	i := sort.Search(len(t.sorted), func(i int) bool { return compareNames(t.sorted[i].key, k) > 0 })
	if i == 0 {
		return nil, false
	}
	return t.sorted[i-1], true
}

// Next returns the smallest element equal to or greater than qname in
// canonical order.
func (t *tree) Next(qname string) (*elem, bool) {
	k := canon(qname)
	i := sort.Search(len(t.sorted), func(i int) bool { return compareNames(t.sorted[i].key, k) >= 0 })
	if i == len(t.sorted) {
		return nil, false
	}
	return t.sorted[i], true
}

// Glue returns the A and AAAA records (and their signatures when do) of
// the in-bailiwick targets of nsrrs.
func (t *tree) Glue(nsrrs []dns.RR, do bool) []dns.RR {
	glue := []dns.RR{}
	for _, rr := range nsrrs {
		if ns, ok := rr.(*dns.NS); ok && dns.IsSubDomain(ns.Header().Name, ns.Ns) {
			glue = append(glue, t.searchGlue(ns.Ns, do)...)
		}
	}
	return glue
}

func (t *tree) searchGlue(name string, do bool) []dns.RR {
	glue := []dns.RR{}
	e, found := t.Search(name)
	if !found {
		return glue
	}
	for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA} {
		glue = append(glue, e.Type(typ)...)
		if do {
			glue = append(glue, subTypeSignature(e.Type(dns.TypeRRSIG), typ)...)
		}
	}
	return glue
}

// subTypeSignature returns the RRSIGs of rrs that cover subtype.
func subTypeSignature(rrs []dns.RR, subtype uint16) []dns.RR {
	sigs := []dns.RR{}
	for _, r := range rrs {
		if s, ok := r.(*dns.RRSIG); ok && s.TypeCovered == subtype {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// canon is the key of a name: lower case; names written with escapes
// are brought to the one presentation miekg/dns gives them on the wire,
// so that "\097.example.org." and "a.example.org." are one name.
func canon(name string) string {
	if strings.IndexByte(name, '\\') < 0 {
		return lower(name)
	}
	buf := make([]byte, 256)
	off, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return lower(name)
	}
	s, _, err := dns.UnpackDomainName(buf[:off], 0)
	if err != nil {
		return lower(name)
	}
	return lower(s)
}

// lower is strings.ToLower for ASCII names, without allocating when the
// name is already lower case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// compareNames orders two canonical keys in DNSSEC canonical order
// (RFC 4034 section 6.1): label by label from the right, each label as
// its bytes. Like CoreDNS's tree it compares a label together with the
// dot that ends it.
func compareNames(a, b string) int {
	aj, bj := len(a), len(b)
	for {
		ai, aEnd := dns.PrevLabel(a[:aj], 1)
		bi, bEnd := dns.PrevLabel(b[:bj], 1)
		if aEnd && bEnd {
			return 0
		}
		// A name out of labels compares as an empty label: the parent
		// sorts before its children.
		la, lb := "", ""
		if !aEnd {
			la = a[ai:aj]
		}
		if !bEnd {
			lb = b[bi:bj]
		}
		if c := compareLabels(la, lb); c != 0 {
			return c
		}
		aj, bj = ai, bi
	}
}

// compareLabels compares two labels (each with its ending dot) byte by
// byte after decoding \DDD and \X escapes.
func compareLabels(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ca, ni := labelByte(a, i)
		cb, nj := labelByte(b, j)
		if ca != cb {
			if ca < cb {
				return -1
			}
			return 1
		}
		i, j = ni, nj
	}
	switch {
	case i < len(a):
		return 1
	case j < len(b):
		return -1
	}
	return 0
}

func labelByte(s string, i int) (byte, int) {
	if s[i] == '\\' && i+1 < len(s) {
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			return (s[i+1]-'0')*100 + (s[i+2]-'0')*10 + (s[i+3] - '0'), i + 4
		}
		return s[i+1], i + 2
	}
	return s[i], i + 1
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
