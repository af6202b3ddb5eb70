package cache

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/miekg/dns"
)

// The wire layout of a DNS message (RFC 1035 4.1).
const (
	headerLen = 12
	rrFixed   = 10 // type, class, ttl, rdlength after the owner name
)

var errWire = errors.New("cache: malformed message")

// skipName returns the offset after the (possibly compressed) name at off.
func skipName(msg []byte, off int) (int, error) {
	for {
		if off >= len(msg) {
			return 0, errWire
		}
		c := int(msg[off])
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, nil
			}
			off += 1 + c
		case 0xC0:
			if off+2 > len(msg) {
				return 0, errWire
			}
			return off + 2, nil
		default:
			return 0, errWire
		}
	}
}

// layout is where the parts of a packed message are: the end of the
// question, and for every resource record (answer, authority, additional
// in order) its TTL offset and end offset.
type layout struct {
	qend    int
	an, ns  int
	ex      int
	ttlOffs []uint16
	ends    []uint16
	types   []uint16
}

// walk finds the layout of msg, which must hold exactly one question.
func walk(msg []byte) (layout, error) {
	var l layout
	if len(msg) < headerLen || len(msg) > dns.MaxMsgSize {
		return l, errWire
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return l, errWire
	}
	l.an = int(binary.BigEndian.Uint16(msg[6:]))
	l.ns = int(binary.BigEndian.Uint16(msg[8:]))
	l.ex = int(binary.BigEndian.Uint16(msg[10:]))
	off, err := skipName(msg, headerLen)
	if err != nil {
		return l, err
	}
	off += 4
	if off > len(msg) {
		return l, errWire
	}
	l.qend = off
	n := l.an + l.ns + l.ex
	l.ttlOffs = make([]uint16, 0, n)
	l.ends = make([]uint16, 0, n)
	l.types = make([]uint16, 0, n)
	for range n {
		off, err = skipName(msg, off)
		if err != nil {
			return l, err
		}
		if off+rrFixed > len(msg) {
			return l, errWire
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		ttlOff := off + 4
		off += rrFixed + rdlen
		if off > len(msg) {
			return l, errWire
		}
		l.ttlOffs = append(l.ttlOffs, uint16(ttlOff))
		l.ends = append(l.ends, uint16(off))
		l.types = append(l.types, typ)
	}
	if off != len(msg) {
		return l, errWire
	}
	return l, nil
}

// putName writes the presentation name s over the wire name at
// msg[off:end], which must spell the same name in another letter case; it
// tells whether it could. Names with escapes go through
// dns.PackDomainName.
func putName(msg []byte, off, end int, s string) bool {
	if s == "." {
		return end-off == 1 && msg[off] == 0
	}
	simple := len(s)+1 == end-off && s[len(s)-1] == '.'
	if simple {
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' {
				simple = false
				break
			}
		}
	}
	if !simple {
		var tmp [256]byte
		n, err := dns.PackDomainName(s, tmp[:], 0, nil, false)
		if err != nil || n != end-off {
			return false
		}
		copy(msg[off:end], tmp[:n])
		return true
	}
	p := 0
	for off < end {
		c := int(msg[off])
		if c == 0 {
			return off+1 == end && p == len(s)
		}
		if c&0xC0 != 0 || p+c >= len(s) || s[p+c] != '.' {
			return false
		}
		copy(msg[off+1:off+1+c], s[p:p+c])
		off += 1 + c
		p += c + 1
	}
	return false
}

// supportedOption lists the EDNS0 options CoreDNS's request.SizeAndDo
// copies from the query into the answer's OPT.
func supportedOption(code uint16) bool {
	switch code {
	case dns.EDNS0NSID, dns.EDNS0EXPIRE, dns.EDNS0COOKIE, dns.EDNS0TCPKEEPALIVE, dns.EDNS0PADDING:
		return true
	}
	return false
}

// appendOPT appends the answer's OPT record built from the query's, as
// CoreDNS's request.SizeAndDo: root name, the query's UDP size, version 0,
// extended rcode 0, the DO bit and the upper flag bits kept, supported
// options only. It returns b unchanged and false when the options do not
// pack.
func appendOPT(b []byte, o *dns.OPT) ([]byte, bool) {
	ttl := o.Hdr.Ttl & 0xff00
	hasOpts := false
	for _, e := range o.Option {
		if supportedOption(e.Option()) {
			hasOpts = true
			break
		}
	}
	if !hasOpts {
		return append(b, 0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT),
			byte(o.Hdr.Class>>8), byte(o.Hdr.Class),
			byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 0), true
	}
	out := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: o.Hdr.Class, Ttl: ttl}}
	for _, e := range o.Option {
		if supportedOption(e.Option()) {
			out.Option = append(out.Option, e)
		}
	}
	start := len(b)
	n := dns.Len(out)
	b = slices.Grow(b, n)[:start+n]
	end, err := dns.PackRR(out, b, start, nil, false)
	if err != nil {
		return b[:start], false
	}
	return b[:end], true
}
