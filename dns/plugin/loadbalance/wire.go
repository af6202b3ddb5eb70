package loadbalance

import (
	"encoding/binary"
	"sync"

	"github.com/miekg/dns"
)

type wireResult int

const (
	wireUnchanged wireResult = iota // write the input as it is
	wireShuffled                    // write the output
	wireFallback                    // unpack, shuffle and write a message
)

const maxWireRRs = 64 // more records: the message path

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// scanName skips the name at off and returns the offset after it and the
// highest offset read through compression pointers (-1 without a
// pointer): the pointers are followed, as a reader decoding the name
// would, and everything they reach must stay where it is.
func scanName(msg []byte, off int) (end, maxReach int, ok bool) {
	end, maxReach = -1, -1
	p := off
	for hops := 0; ; {
		if p >= len(msg) {
			return 0, 0, false
		}
		c := int(msg[p])
		switch c & 0xC0 {
		case 0x00:
			if end >= 0 {
				maxReach = max(maxReach, p+c)
			}
			if c == 0 {
				if end < 0 {
					end = p + 1
				}
				return end, maxReach, true
			}
			p += 1 + c
		case 0xC0:
			if p+1 >= len(msg) {
				return 0, 0, false
			}
			if end < 0 {
				end = p + 2
			} else {
				maxReach = max(maxReach, p+1)
			}
			t := (c&0x3F)<<8 | int(msg[p+1])
			if hops++; hops > 64 || t >= p {
				return 0, 0, false // loops and forward pointers
			}
			maxReach = max(maxReach, t)
			p = t
		default:
			return 0, 0, false
		}
	}
}

// rdataNames tells where names are in the rdata of typ: how many bytes
// come first and how many names follow; known is false for types whose
// rdata layout is not handled here.
func rdataNames(typ uint16) (skip, names int, known bool) {
	switch typ {
	case dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeHINFO, dns.TypeOPT, dns.TypeDS, dns.TypeDNSKEY,
		dns.TypeNSEC3, dns.TypeNSEC3PARAM, dns.TypeTLSA, dns.TypeSSHFP, dns.TypeCAA, dns.TypeNULL,
		dns.TypeSPF, dns.TypeCDS, dns.TypeCDNSKEY, dns.TypeZONEMD:
		return 0, 0, true
	case dns.TypeNS, dns.TypeMD, dns.TypeMF, dns.TypeCNAME, dns.TypeMB, dns.TypeMG, dns.TypeMR,
		dns.TypePTR, dns.TypeDNAME, dns.TypeNSEC:
		return 0, 1, true
	case dns.TypeSOA, dns.TypeMINFO, dns.TypeRP:
		return 0, 2, true
	case dns.TypeMX, dns.TypeAFSDB, dns.TypeRT, dns.TypeKX, dns.TypeSVCB, dns.TypeHTTPS:
		return 2, 1, true
	case dns.TypePX:
		return 2, 2, true
	case dns.TypeSRV:
		return 6, 1, true
	case dns.TypeRRSIG:
		return 18, 1, true
	}
	return 0, 0, false
}

type span struct {
	start, end int
	typ        uint16
}

// shuffleWire is randomShuffle on a packed message: in each section
// CNAMEs, then other records, then the shuffled addresses (A, AAAA), then
// the shuffled MX records; an OPT record stays last. Messages that are not
// successful answers, zone transfers, or without a question are
// unchanged. When a name read through a compression pointer reaches the
// first record that moves or beyond, the bytes cannot be reordered:
// wireFallback.
func shuffleWire(msg, out []byte) ([]byte, wireResult) {
	if len(msg) < 12 || msg[3]&0x0F != dns.RcodeSuccess || binary.BigEndian.Uint16(msg[4:]) != 1 {
		return out, wireUnchanged
	}
	counts := [3]int{
		int(binary.BigEndian.Uint16(msg[6:])),
		int(binary.BigEndian.Uint16(msg[8:])),
		int(binary.BigEndian.Uint16(msg[10:])),
	}
	total := counts[0] + counts[1] + counts[2]
	if total > maxWireRRs {
		return out, wireFallback
	}
	off, maxReach, ok := scanName(msg, 12)
	if !ok || off+4 > len(msg) {
		return out, wireUnchanged
	}
	if qt := binary.BigEndian.Uint16(msg[off:]); qt == dns.TypeAXFR || qt == dns.TypeIXFR {
		return out, wireUnchanged
	}
	off += 4

	var spanArr [maxWireRRs]span
	spans := spanArr[:0]
	for range total {
		start := off
		var t int
		off, t, ok = scanName(msg, off)
		if !ok || off+10 > len(msg) {
			return out, wireFallback
		}
		maxReach = max(maxReach, t)
		typ := binary.BigEndian.Uint16(msg[off:])
		if typ == dns.TypeOPT && msg[off+4] != 0 {
			return out, wireUnchanged // extended rcode: not a success
		}
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		rd := off + 10
		end := rd + rdlen
		if end > len(msg) {
			return out, wireFallback
		}
		skip, names, known := rdataNames(typ)
		if !known {
			return out, wireFallback
		}
		p := rd + skip
		for range names {
			if p >= end {
				break
			}
			p, t, ok = scanName(msg[:end], p)
			if !ok {
				return out, wireFallback
			}
			maxReach = max(maxReach, t)
		}
		spans = append(spans, span{start: start, end: end, typ: typ})
		off = end
	}
	if off != len(msg) {
		return out, wireFallback
	}

	var orderArr [maxWireRRs]uint8
	order := orderArr[:0]
	base := 0
	for _, n := range counts {
		order = groupSection(order, spans, base, base+n)
		base += n
	}
	first := -1
	for k, idx := range order {
		if int(idx) != k {
			first = k
			break
		}
	}
	if first < 0 {
		return out, wireUnchanged
	}
	if maxReach >= spans[first].start {
		return out, wireFallback
	}
	out = append(out, msg[:spans[first].start]...)
	for _, idx := range order[first:] {
		s := spans[idx]
		out = append(out, msg[s.start:s.end]...)
	}
	return out, wireShuffled
}

// groupSection appends the new order of records [from, to).
func groupSection(order []uint8, spans []span, from, to int) []uint8 {
	var addrArr, mxArr [maxWireRRs]uint8
	addr, mx := addrArr[:0], mxArr[:0]
	opt := -1
	for i := from; i < to; i++ {
		if spans[i].typ == dns.TypeCNAME {
			order = append(order, uint8(i))
		}
	}
	for i := from; i < to; i++ {
		switch spans[i].typ {
		case dns.TypeCNAME:
		case dns.TypeA, dns.TypeAAAA:
			addr = append(addr, uint8(i))
		case dns.TypeMX:
			mx = append(mx, uint8(i))
		case dns.TypeOPT:
			if opt < 0 {
				opt = i
				continue
			}
			order = append(order, uint8(i))
		default:
			order = append(order, uint8(i))
		}
	}
	shuffleSlice(addr)
	shuffleSlice(mx)
	order = append(order, addr...)
	order = append(order, mx...)
	if opt >= 0 {
		order = append(order, uint8(opt))
	}
	return order
}
