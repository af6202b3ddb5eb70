package nftables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	gnft "github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// This file holds the in-memory form of what we program: one family's
// table with its sets, maps, chains and rules. Every object knows how to
// print itself as nft syntax (Render, the dry run) and how to encode
// itself as netlink (the apply path, netlink.go): both come from the same
// values, so the script and the batch cannot drift apart.

// family is one IP family's table.
type family struct {
	name     string // "ip" or "ip6": the nft family keyword and payload prefix
	addrType string // "ipv4_addr" / "ipv6_addr"
	addrLen  int    // 4 / 16
	nfproto  uint8  // NFPROTO_IPV4 / NFPROTO_IPV6
	saddrOff uint32 // payload offsets in the network header
	daddrOff uint32
	table    gnft.TableFamily
	is4      bool
}

var (
	fam4 = &family{name: "ip", addrType: "ipv4_addr", addrLen: 4, nfproto: unix.NFPROTO_IPV4, saddrOff: 12, daddrOff: 16, table: gnft.TableFamilyIPv4, is4: true}
	fam6 = &family{name: "ip6", addrType: "ipv6_addr", addrLen: 16, nfproto: unix.NFPROTO_IPV6, saddrOff: 8, daddrOff: 24, table: gnft.TableFamilyIPv6}
)

func (f *family) has(a netip.Addr) bool {
	return a.IsValid() && (f.is4 == a.Unmap().Is4())
}

// fieldKind is one component of a set key or map value.
type fieldKind uint8

const (
	fAddr   fieldKind = iota // the family's address (elemKey.addr, or elemVal.addr)
	fAddr2                   // a second address (elemKey.addr2)
	fProto                   // inet_proto
	fPort                    // inet_service
	fBucket                  // numgen result: typeof "numgen random mod 1", kernel type mark (see setDef.typeof)
	fRange                   // an address prefix in an interval set (elemKey.pfx)
)

func (k fieldKind) typeName(f *family) string {
	switch k {
	case fAddr, fAddr2, fRange:
		return f.addrType
	case fProto:
		return "inet_proto"
	case fPort:
		return "inet_service"
	default:
		return "mark"
	}
}

func (k fieldKind) datatype(f *family) gnft.SetDatatype {
	switch k {
	case fAddr, fAddr2, fRange:
		if f.is4 {
			return gnft.TypeIPAddr
		}
		return gnft.TypeIP6Addr
	case fProto:
		return gnft.TypeInetProto
	case fPort:
		return gnft.TypeInetService
	default:
		return gnft.TypeMark
	}
}

// setDef describes a named set or map.
type setDef struct {
	name    string
	key     []fieldKind
	data    []fieldKind // nil for a set; {fAddr, fPort} for a dnat map
	vmap    bool        // verdict map
	typeof  string      // when set: the "typeof" declaration used in the script instead of "type"
	flags   []string    // "interval", "dynamic", "timeout"
	timeout time.Duration
	comment string
}

func (d *setDef) isMap() bool    { return d.vmap || len(d.data) > 0 }
func (d *setDef) interval() bool { return d.hasFlag("interval") }
func (d *setDef) hasFlag(f string) bool {
	for _, x := range d.flags {
		if x == f {
			return true
		}
	}
	return false
}

func (d *setDef) kind() string {
	if d.isMap() {
		return "map"
	}
	return "set"
}

// spec is the body of the set's declaration in nft syntax.
func (d *setDef) spec(f *family) string {
	var b strings.Builder
	b.WriteString("{ ")
	if d.typeof != "" {
		b.WriteString("typeof " + d.typeof)
	} else {
		b.WriteString("type ")
		for i, k := range d.key {
			if i > 0 {
				b.WriteString(" . ")
			}
			b.WriteString(k.typeName(f))
		}
		if d.vmap {
			b.WriteString(" : verdict")
		} else if len(d.data) > 0 {
			b.WriteString(" : ")
			for i, k := range d.data {
				if i > 0 {
					b.WriteString(" . ")
				}
				b.WriteString(k.typeName(f))
			}
		}
	}
	b.WriteString(" ;")
	if len(d.flags) > 0 {
		b.WriteString(" flags " + strings.Join(d.flags, ",") + " ;")
	}
	if d.timeout > 0 {
		b.WriteString(" timeout " + nftDuration(d.timeout) + " ;")
	}
	if d.comment != "" {
		b.WriteString(" comment " + strconv.Quote(d.comment) + " ;")
	}
	b.WriteString(" }")
	return b.String()
}

func nftDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if s <= 0 {
		s = 1
	}
	return strconv.FormatInt(s, 10) + "s"
}

// a16 is an address as 16 bytes (IPv4 mapped into IPv6): keys and values
// hold no pointers, so the maps of 100,000s of elements cost the garbage
// collector nothing.
type a16 [16]byte

func toA16(a netip.Addr) a16 { return a.As16() }

func (a a16) addr() netip.Addr { return netip.AddrFrom16(a).Unmap() }

// bytes is the address as the family stores it.
func (a a16) bytes(f *family) []byte {
	if f.is4 {
		return a[12:16]
	}
	return a[:]
}

// elemKey is a set element's key. Which fields count is given by the set's
// key layout; the others stay zero. It is comparable, so it indexes maps.
type elemKey struct {
	a, b   a16 // fAddr, fAddr2 / the fRange prefix's address
	port   uint16
	proto  uint8
	bits   uint8 // fRange: prefix length (in the family's terms)
	bucket uint32
}

func (k elemKey) prefix() netip.Prefix { return netip.PrefixFrom(k.b.addr(), int(k.bits)) }

func rangeKey(p netip.Prefix) (a16, uint8) {
	p = p.Masked()
	return toA16(p.Addr()), uint8(p.Bits())
}

// verdict codes.
const (
	vNone uint8 = iota
	vGoto
	vJump
	vDrop
	vAccept
	vReturn
)

// elemVal is a map element's value and comment. Strings (the goto target,
// the comment) are interned in a strTable.
type elemVal struct {
	a       a16 // dnat maps: address . port
	port    uint16
	code    uint8  // verdict maps: vGoto/vJump/vDrop
	chain   uint32 // interned goto target
	comment uint32 // interned comment (0: none)
}

// strTable interns strings; id 0 is "".
type strTable struct {
	ids  map[string]uint32
	strs []string
}

func newStrTable() *strTable { return &strTable{ids: map[string]uint32{"": 0}, strs: []string{""}} }

func (t *strTable) id(s string) uint32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	id := uint32(len(t.strs))
	t.ids[s] = id
	t.strs = append(t.strs, s)
	return id
}

func (t *strTable) str(id uint32) string {
	if int(id) < len(t.strs) {
		return t.strs[id]
	}
	return ""
}

func verdictText(code uint8, chain string) string {
	switch code {
	case vGoto:
		return "goto " + chain
	case vJump:
		return "jump " + chain
	case vDrop:
		return "drop"
	case vAccept:
		return "accept"
	case vReturn:
		return "return"
	}
	return ""
}

func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

func (d *setDef) keyText(k elemKey) string {
	var b strings.Builder
	for i, f := range d.key {
		if i > 0 {
			b.WriteString(" . ")
		}
		switch f {
		case fAddr:
			b.WriteString(k.a.addr().String())
		case fAddr2:
			b.WriteString(k.b.addr().String())
		case fProto:
			b.WriteString(protoName(k.proto))
		case fPort:
			b.WriteString(strconv.Itoa(int(k.port)))
		case fBucket:
			b.WriteString(strconv.FormatUint(uint64(k.bucket), 10))
		case fRange:
			b.WriteString(k.prefix().String())
		}
	}
	return b.String()
}

func (d *setDef) elemText(k elemKey, v elemVal, strs *strTable) string {
	s := d.keyText(k)
	if v.comment != 0 {
		s += " comment " + strconv.Quote(strs.str(v.comment))
	}
	switch {
	case d.vmap:
		s += " : " + verdictText(v.code, strs.str(v.chain))
	case len(d.data) > 0:
		s += " : " + v.a.addr().String() + " . " + strconv.Itoa(int(v.port))
	}
	return s
}

// keyBytes encodes a key as the kernel stores it: each field padded to
// 4 bytes, addresses and ports in network order, the bucket in host order
// (numgen writes a host-order u32). end selects the last address of an
// interval field (for NFTA_SET_ELEM_KEY_END).
func (d *setDef) keyBytes(f *family, k elemKey, end bool) []byte {
	out := make([]byte, 0, 40)
	for _, fk := range d.key {
		switch fk {
		case fAddr:
			out = append(out, k.a.bytes(f)...)
		case fAddr2:
			out = append(out, k.b.bytes(f)...)
		case fProto:
			out = append(out, k.proto, 0, 0, 0)
		case fPort:
			out = binary.BigEndian.AppendUint16(out, k.port)
			out = append(out, 0, 0)
		case fBucket:
			out = binary.NativeEndian.AppendUint32(out, k.bucket)
		case fRange:
			p := k.prefix()
			if end {
				out = append(out, lastAddr(p).AsSlice()...)
			} else {
				out = append(out, p.Masked().Addr().AsSlice()...)
			}
		}
	}
	return out
}

func (d *setDef) valBytes(f *family, v elemVal) []byte {
	out := make([]byte, 0, 20)
	out = append(out, v.a.bytes(f)...)
	out = binary.BigEndian.AppendUint16(out, v.port)
	return append(out, 0, 0)
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// compareKeys orders keys for deterministic output.
func compareKeys(a, b elemKey) int {
	if c := bytes.Compare(a.a[:], b.a[:]); c != 0 {
		return c
	}
	if a.proto != b.proto {
		return int(a.proto) - int(b.proto)
	}
	if a.port != b.port {
		return int(a.port) - int(b.port)
	}
	if a.bucket != b.bucket {
		if a.bucket < b.bucket {
			return -1
		}
		return 1
	}
	if c := bytes.Compare(a.b[:], b.b[:]); c != 0 {
		return c
	}
	return int(a.bits) - int(b.bits)
}

// chainDef is a chain; base chains carry a hook.
type chainDef struct {
	name     string
	typ      string // "filter" / "nat" for base chains
	hook     string // "prerouting", ...
	priority int32
}

func (c *chainDef) base() bool { return c.hook != "" }

func (c *chainDef) spec() string {
	if !c.base() {
		return ""
	}
	return fmt.Sprintf(" { type %s hook %s priority %d ; }", c.typ, c.hook, c.priority)
}

// rule is one rule: statements in order, and a comment.
type rule struct {
	stmts   []stmt
	comment string
}

func (r *rule) text(f *family) string {
	var b strings.Builder
	for i, s := range r.stmts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.text(f))
	}
	if r.comment != "" {
		b.WriteString(" comment " + strconv.Quote(r.comment))
	}
	return b.String()
}

func rulesEqual(f *family, a, b []rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].text(f) != b[i].text(f) {
			return false
		}
	}
	return true
}

func r(stmts ...stmt) rule { return rule{stmts: stmts} }

func rc(comment string, stmts ...stmt) rule { return rule{stmts: stmts, comment: comment} }
