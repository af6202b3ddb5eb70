package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// A stmt is one statement of a rule. text is its nft syntax; exprs appends
// the expressions nft itself would generate for that syntax (the register
// numbering and byte layouts follow `nft --debug=netlink`, so that `nft
// list` prints a netlink-written rule exactly as the scripted one).
type stmt interface {
	text(f *family) string
	exprs(b *exprBuilder)
}

// exprBuilder collects one rule's expressions.
type exprBuilder struct {
	f     *family
	out   []expr.Any
	setID func(name string) uint32
}

func (b *exprBuilder) add(e ...expr.Any) { b.out = append(b.out, e...) }

// nftReg is the register nft uses for a concatenation component starting
// at the given 32-bit word: the 128-bit register when aligned, otherwise
// the 32-bit one.
func nftReg(word int) uint32 {
	if word%4 == 0 {
		return uint32(unix.NFT_REG_1 + word/4)
	}
	return uint32(unix.NFT_REG32_00 + word)
}

func words(n int) int { return (n + 3) / 4 }

func native32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// key expressions (components of a concatenation).
type keyKind uint8

const (
	kSaddr keyKind = iota
	kDaddr
	kL4proto
	kDport
	kNumgen
)

type keyExpr struct {
	kind        keyKind
	mod, offset uint32
}

var (
	keySaddr   = keyExpr{kind: kSaddr}
	keyDaddr   = keyExpr{kind: kDaddr}
	keyL4proto = keyExpr{kind: kL4proto}
	keyDport   = keyExpr{kind: kDport}
)

func keyNumgen(mod, offset uint32) keyExpr { return keyExpr{kind: kNumgen, mod: mod, offset: offset} }

func (k keyExpr) text(f *family) string {
	switch k.kind {
	case kSaddr:
		return f.name + " saddr"
	case kDaddr:
		return f.name + " daddr"
	case kL4proto:
		return "meta l4proto"
	case kDport:
		return "th dport"
	default:
		s := "numgen random mod " + strconv.FormatUint(uint64(k.mod), 10)
		if k.offset != 0 {
			s += " offset " + strconv.FormatUint(uint64(k.offset), 10)
		}
		return s
	}
}

func (k keyExpr) size(f *family) int {
	switch k.kind {
	case kSaddr, kDaddr:
		return f.addrLen
	case kL4proto:
		return 1
	case kDport:
		return 2
	default:
		return 4
	}
}

func (k keyExpr) load(b *exprBuilder, reg uint32, hton bool) {
	switch k.kind {
	case kSaddr:
		b.add(&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: b.f.saddrOff, Len: uint32(b.f.addrLen)})
	case kDaddr:
		b.add(&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: b.f.daddrOff, Len: uint32(b.f.addrLen)})
	case kL4proto:
		b.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg})
		if hton {
			// nft converts the protocol for interval (pipapo) lookups.
			b.add(&expr.Byteorder{SourceRegister: reg, DestRegister: reg, Op: expr.ByteorderHton, Len: 1, Size: 2})
		}
	case kDport:
		b.add(&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	case kNumgen:
		b.add(&expr.Numgen{Register: reg, Modulus: k.mod, Type: unix.NFT_NG_RANDOM, Offset: k.offset})
	}
}

func keysText(f *family, keys []keyExpr) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.text(f)
	}
	return strings.Join(parts, " . ")
}

// loadKeys loads a concatenation starting at register 1; returns the words used.
func loadKeys(b *exprBuilder, keys []keyExpr, hton bool) int {
	w := 0
	for _, k := range keys {
		k.load(b, nftReg(w), hton)
		w += words(k.size(b.f))
	}
	return w
}

// --- statements ---

type stCtStateNew struct{}

func (stCtStateNew) text(*family) string { return "ct state new" }
func (stCtStateNew) exprs(b *exprBuilder) {
	b.add(&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(expr.CtStateBitNEW), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: native32(0)})
}

type stCtStatusDnat struct{}

func (stCtStatusDnat) text(*family) string { return "ct status dnat" }
func (stCtStatusDnat) exprs(b *exprBuilder) {
	b.add(&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(0x20), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: native32(0)})
}

type stFibLocal struct{ saddr bool }

func (s stFibLocal) text(*family) string {
	if s.saddr {
		return "fib saddr type local"
	}
	return "fib daddr type local"
}
func (s stFibLocal) exprs(b *exprBuilder) {
	b.add(&expr.Fib{Register: 1, FlagSADDR: s.saddr, FlagDADDR: !s.saddr, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(unix.RTN_LOCAL)})
}

// stNotLoopback excludes localhost destinations (no NodePorts on loopback).
type stNotLoopback struct{}

func (stNotLoopback) text(f *family) string {
	if f.is4 {
		return "ip daddr != 127.0.0.0/8"
	}
	return "ip6 daddr != ::1"
}
func (stNotLoopback) exprs(b *exprBuilder) {
	if b.f.is4 {
		b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: b.f.daddrOff, Len: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{127}})
		return
	}
	b.add(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: b.f.daddrOff, Len: 16},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: netip.IPv6Loopback().AsSlice()})
}

// stAddrEq matches one source or destination address.
type stAddrEq struct {
	saddr bool
	addr  netip.Addr
}

func (s stAddrEq) text(f *family) string {
	if s.saddr {
		return f.name + " saddr " + s.addr.String()
	}
	return f.name + " daddr " + s.addr.String()
}
func (s stAddrEq) exprs(b *exprBuilder) {
	k := keyDaddr
	if s.saddr {
		k = keySaddr
	}
	k.load(b, 1, false)
	b.add(&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: s.addr.AsSlice()})
}

// stProtoDport is "tcp dport 80".
type stProtoDport struct {
	proto uint8
	port  uint16
}

func (s stProtoDport) text(*family) string {
	return protoName(s.proto) + " dport " + strconv.Itoa(int(s.port))
}
func (s stProtoDport) exprs(b *exprBuilder) {
	b.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{s.proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, s.port)})
}

// stLookup is "KEYS @set" or "KEYS != @set".
type stLookup struct {
	keys []keyExpr
	set  string
	neg  bool
	hton bool // the set is an interval concatenation holding a protocol
}

func (s stLookup) text(f *family) string {
	op := " "
	if s.neg {
		op = " != "
	}
	return keysText(f, s.keys) + op + "@" + s.set
}
func (s stLookup) exprs(b *exprBuilder) {
	loadKeys(b, s.keys, s.hton)
	b.add(&expr.Lookup{SourceRegister: 1, SetName: s.set, SetID: b.setID(s.set), Invert: s.neg})
}

// stVmap is "KEYS vmap @map".
type stVmap struct {
	keys []keyExpr
	set  string
}

func (s stVmap) text(f *family) string { return keysText(f, s.keys) + " vmap @" + s.set }
func (s stVmap) exprs(b *exprBuilder) {
	loadKeys(b, s.keys, false)
	b.add(&expr.Lookup{SourceRegister: 1, SetName: s.set, SetID: b.setID(s.set), IsDestRegSet: true, DestRegister: 0})
}

// stDnatMap is "dnat ip to KEYS map @map" with a map of address . port.
type stDnatMap struct {
	keys []keyExpr
	set  string
}

func (s stDnatMap) text(f *family) string {
	return "dnat " + f.name + " to " + keysText(f, s.keys) + " map @" + s.set
}
func (s stDnatMap) exprs(b *exprBuilder) {
	loadKeys(b, s.keys, false)
	b.add(&expr.Lookup{SourceRegister: 1, SetName: s.set, SetID: b.setID(s.set), IsDestRegSet: true, DestRegister: 1},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(b.f.nfproto), RegAddrMin: 1, RegProtoMin: nftReg(words(b.f.addrLen))})
}

// stDnatTo is "meta l4proto tcp dnat to 10.0.0.1:80".
type stDnatTo struct {
	proto uint8
	addr  netip.Addr
	port  uint16
}

func (s stDnatTo) text(f *family) string {
	return "meta l4proto " + protoName(s.proto) + " dnat to " + netip.AddrPortFrom(s.addr, s.port).String()
}
func (s stDnatTo) exprs(b *exprBuilder) {
	b.add(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{s.proto}},
		&expr.Immediate{Register: 1, Data: s.addr.AsSlice()},
		&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, s.port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(b.f.nfproto), RegAddrMin: 1, RegProtoMin: 2, Specified: true})
}

// stNumgenZero is "numgen random mod N 0": true with probability 1/N.
type stNumgenZero struct{ mod uint32 }

func (s stNumgenZero) text(*family) string {
	return "numgen random mod " + strconv.FormatUint(uint64(s.mod), 10) + " 0"
}
func (s stNumgenZero) exprs(b *exprBuilder) {
	b.add(&expr.Numgen{Register: 1, Modulus: s.mod, Type: unix.NFT_NG_RANDOM},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(0)})
}

// stUpdate is "update @set { ip saddr }" (session affinity).
type stUpdate struct{ set string }

func (s stUpdate) text(f *family) string { return "update @" + s.set + " { " + f.name + " saddr }" }
func (s stUpdate) exprs(b *exprBuilder) {
	keySaddr.load(b, 1, false)
	b.add(&expr.Dynset{SrcRegKey: 1, SetName: s.set, SetID: b.setID(s.set), Operation: unix.NFT_DYNSET_OP_UPDATE})
}

type stVerdict struct {
	code  uint8
	chain string
}

func (s stVerdict) text(*family) string { return verdictText(s.code, s.chain) }
func (s stVerdict) exprs(b *exprBuilder) {
	var k expr.VerdictKind
	switch s.code {
	case vGoto:
		k = expr.VerdictGoto
	case vJump:
		k = expr.VerdictJump
	case vDrop:
		k = expr.VerdictDrop
	case vAccept:
		k = expr.VerdictAccept
	case vReturn:
		k = expr.VerdictReturn
	}
	b.add(&expr.Verdict{Kind: k, Chain: s.chain})
}

func jump(c string) stmt  { return stVerdict{code: vJump, chain: c} }
func gotoC(c string) stmt { return stVerdict{code: vGoto, chain: c} }

// stReject is a plain "reject": ICMP(v6) port unreachable, which a TCP
// client sees as "connection refused" at once.
type stReject struct{}

func (stReject) text(*family) string { return "reject" }
func (stReject) exprs(b *exprBuilder) {
	code := uint8(3) // ICMP_PORT_UNREACH
	if !b.f.is4 {
		code = 4 // ICMPV6_PORT_UNREACH
	}
	b.add(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: code})
}

type stMarkOr struct{ mark uint32 }

func (s stMarkOr) text(*family) string { return fmt.Sprintf("meta mark set mark or %#x", s.mark) }
func (s stMarkOr) exprs(b *exprBuilder) {
	b.add(&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(^s.mark), Xor: native32(s.mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
}

type stMarkXor struct{ mark uint32 }

func (s stMarkXor) text(*family) string { return fmt.Sprintf("meta mark set mark xor %#x", s.mark) }
func (s stMarkXor) exprs(b *exprBuilder) {
	b.add(&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(0xffffffff), Xor: native32(s.mark)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
}

// stMarkUnset is "mark and MARK == 0".
type stMarkUnset struct{ mark uint32 }

func (s stMarkUnset) text(*family) string { return fmt.Sprintf("mark and %#x == 0", s.mark) }
func (s stMarkUnset) exprs(b *exprBuilder) {
	b.add(&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(s.mark), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(0)})
}

type stMasq struct{}

func (stMasq) text(*family) string  { return "masquerade fully-random" }
func (stMasq) exprs(b *exprBuilder) { b.add(&expr.Masq{FullyRandom: true}) }
