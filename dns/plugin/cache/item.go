package cache

import (
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// item is one cached answer: the packed message (header, question,
// answer, authority and additional sections without OPT, every TTL equal
// to origTTL) and where its TTLs and records are.
type item struct {
	name  string // question name as stored (case of the first query)
	qtype uint16

	rcode int
	ad    bool
	ra    bool

	wire    []byte
	qend    int // end of the question section
	an      int
	ns      int
	ex      int
	ttlOffs []uint16
	ends    []uint16 // end of every record, in order

	origTTL  uint32
	stored   time.Time
	storedNs int64  // stored as Unix nanoseconds
	version  uint64 // the version of the name when its answer was asked for (Cache.version)

	// prefetch bookkeeping (CoreDNS's cache/freq), only used with prefetch
	mu   sync.Mutex
	last time.Time
	hits int
}

// newItem packs m (already filtered: no OPT, every TTL capped) for the
// cache; nil when it does not pack.
func newItem(m *dns.Msg, now time.Time, d time.Duration) *item {
	if len(m.Question) == 0 {
		return nil
	}
	s := dns.Msg{MsgHdr: m.MsgHdr, Compress: true, Question: m.Question[:1], Answer: m.Answer, Ns: m.Ns, Extra: m.Extra}
	wire, err := s.Pack()
	if err != nil {
		return nil
	}
	l, err := walk(wire)
	if err != nil {
		return nil
	}
	// Only what unpacks again is served from the cache (miekg/dns packs
	// some malformed records it accepted into bytes it cannot read).
	var check dns.Msg
	if check.Unpack(wire) != nil {
		return nil
	}
	return &item{
		name:     m.Question[0].Name,
		qtype:    m.Question[0].Qtype,
		rcode:    m.Rcode,
		ad:       m.AuthenticatedData,
		ra:       m.RecursionAvailable,
		wire:     wire,
		qend:     l.qend,
		an:       l.an,
		ns:       l.ns,
		ex:       l.ex,
		ttlOffs:  l.ttlOffs,
		ends:     l.ends,
		origTTL:  uint32(d.Seconds()),
		stored:   now.UTC(),
		storedNs: now.UnixNano(),
	}
}

// ttl is the remaining TTL at now (Unix nanoseconds); negative once
// expired. Whole seconds elapsed count, as CoreDNS's int(Seconds()).
func (i *item) ttl(nowNs int64) int {
	return int(i.origTTL) - int((nowNs-i.storedNs)/int64(time.Second))
}

// matches guards against hash collisions: same type, same name in any
// case.
func (i *item) matches(qname string, qtype uint16) bool {
	return qtype == i.qtype && (qname == i.name || strings.EqualFold(qname, i.name))
}

// update counts a hit at now: the hits are reset to 1 after a gap of d or
// more (CoreDNS's freq.Update). It returns the hits.
func (i *item) update(d time.Duration, now time.Time) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.last.Before(now.Add(-d)) {
		i.last = now
		i.hits = 1
		return 1
	}
	i.last = now
	i.hits++
	return i.hits
}

func (i *item) Hits() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.hits
}

func (i *item) reset(t time.Time, hits int) {
	i.mu.Lock()
	i.last = t
	i.hits = hits
	i.mu.Unlock()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// reply builds the answer to query r from the item into b, as CoreDNS's
// item.toMsg followed by the server's ScrubWriter: ID, opcode, RD and CD
// from the query, AA set, AD only when the query asked for DNSSEC (DO) or
// set AD, the query's question (its case), every TTL set to ttl, the
// query's OPT (SizeAndDo), truncated to size with TC as dns.Msg.Truncate.
// ok is false when the query's name cannot replace the stored one.
func (i *item) reply(b []byte, r *dns.Msg, ttl uint32, do bool, size int, opt *dns.OPT) ([]byte, bool) {
	b = append(b[:0], i.wire...)
	q := &r.Question[0]
	if q.Name != i.name && !putName(b, headerLen, i.qend-4, q.Name) {
		return b, false
	}
	binary.BigEndian.PutUint16(b[i.qend-2:], q.Qclass)

	binary.BigEndian.PutUint16(b[0:], r.Id)
	f2 := byte(0x80) | byte(r.Opcode&0xF)<<3 | 0x04 // QR, opcode, AA
	var f3 byte
	if r.Opcode == dns.OpcodeQuery {
		if r.RecursionDesired {
			f2 |= 0x01
		}
		if r.CheckingDisabled {
			f3 |= 0x10
		}
	}
	if i.ra {
		f3 |= 0x80
	}
	if i.ad && (do || r.AuthenticatedData) {
		f3 |= 0x20
	}
	f3 |= byte(i.rcode & 0xF)

	for _, off := range i.ttlOffs {
		binary.BigEndian.PutUint32(b[off:], ttl)
	}

	an, ns, ex := i.an, i.ns, i.ex
	optLen := 0
	if opt != nil {
		optLen = 11 // without options; options are rare, see below
		for _, e := range opt.Option {
			if supportedOption(e.Option()) {
				optLen = dns.Len(opt) // upper bound
				break
			}
		}
	}
	if len(b)+optLen > size {
		// dns.Msg.Truncate: keep the records that fit, set TC when any is
		// dropped, keep the OPT.
		budget := size - optLen
		k := 0
		end := i.qend
		for k < len(i.ends) && int(i.ends[k]) <= budget {
			end = int(i.ends[k])
			k++
		}
		if k < len(i.ends) {
			f2 |= 0x02
		}
		b = b[:end]
		an = min(an, k)
		ns = min(ns, k-an)
		ex = min(ex, k-an-ns)
	}
	b[2], b[3] = f2, f3
	if opt != nil {
		var ok bool
		if b, ok = appendOPT(b, opt); ok {
			ex++
		}
	}
	binary.BigEndian.PutUint16(b[6:], uint16(an))
	binary.BigEndian.PutUint16(b[8:], uint16(ns))
	binary.BigEndian.PutUint16(b[10:], uint16(ex))
	return b, true
}
