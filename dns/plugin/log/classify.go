package log

import (
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// Class is a class of answers, as CoreDNS's response.Class.
type Class int

// The classes of answers.
const (
	All     Class = iota // every answer
	Success              // NOERROR with data, delegations
	Denial               // NXDOMAIN and NODATA
	Error                // SERVFAIL, NOTIMP, REFUSED ...
)

func (c Class) String() string {
	switch c {
	case All:
		return "all"
	case Success:
		return "success"
	case Denial:
		return "denial"
	case Error:
		return "error"
	}
	return ""
}

// ClassFromString parses a class name.
func ClassFromString(s string) (Class, error) {
	switch s {
	case "all":
		return All, nil
	case "success":
		return Success, nil
	case "denial":
		return Denial, nil
	case "error":
		return Error, nil
	}
	return All, fmt.Errorf("invalid Class: %s", s)
}

// Type is the kind of an answer, as CoreDNS's response.Type.
type Type int

// The kinds of answers.
const (
	NoError Type = iota
	NameError
	ServerError
	NoData
	Delegation
	Meta
	Update
	OtherError
)

// Typify tells what kind of answer m is, as CoreDNS's response.Typify.
func Typify(m *dns.Msg, t time.Time) Type {
	if m == nil {
		return OtherError
	}
	opt := m.IsEdns0()
	do := opt != nil && opt.Do()
	if m.Opcode == dns.OpcodeUpdate {
		return Update
	}
	if m.Opcode == dns.OpcodeNotify {
		return Meta
	}
	if len(m.Question) > 0 && (m.Question[0].Qtype == dns.TypeAXFR || m.Question[0].Qtype == dns.TypeIXFR) {
		return Meta
	}
	if do && (expired(m.Answer, t) || expired(m.Ns, t) || expired(m.Extra, t)) {
		return OtherError
	}
	if len(m.Answer) > 0 && m.Rcode == dns.RcodeSuccess {
		return NoError
	}
	soa, ns := false, 0
	for _, r := range m.Ns {
		switch r.Header().Rrtype {
		case dns.TypeSOA:
			soa = true
		case dns.TypeNS:
			ns++
		}
	}
	switch {
	case soa && m.Rcode == dns.RcodeSuccess:
		return NoData
	case soa && m.Rcode == dns.RcodeNameError:
		return NameError
	case m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeNotImplemented:
		return ServerError
	case ns > 0 && m.Rcode == dns.RcodeSuccess:
		return Delegation
	case m.Rcode == dns.RcodeSuccess:
		return NoError
	}
	return OtherError
}

func expired(rrs []dns.RR, t time.Time) bool {
	for _, r := range rrs {
		if sig, ok := r.(*dns.RRSIG); ok && !sig.ValidityPeriod(t) {
			return true
		}
	}
	return false
}

// Classify maps a kind of answer to its class.
func Classify(t Type) Class {
	switch t {
	case NoError, Delegation:
		return Success
	case NameError, NoData:
		return Denial
	}
	return Error
}
