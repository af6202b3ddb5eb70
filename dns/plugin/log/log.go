package log

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// The formats CoreDNS names.
const (
	CommonLogFormat   = `{remote}:{port} ` + EmptyValue + ` {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}`
	CombinedLogFormat = CommonLogFormat + ` "{>opcode}"`
	DefaultLogFormat  = CommonLogFormat
	// EmptyValue stands for a value that is not known.
	EmptyValue = "-"
)

// Rule is one log line of a Corefile: the names it logs, the answer
// classes, and the format.
type Rule struct {
	NameScope string
	Class     map[Class]bool
	Format    format
}

// Logger logs the queries that match its rules.
type Logger struct {
	Next  plugin.Handler
	Rules []Rule
	out   *lineWriter
}

// Name implements plugin.Handler.
func (l *Logger) Name() string { return "log" }

// ServeDNS implements plugin.Handler: the first rule whose names match
// decides, as CoreDNS.
func (l *Logger) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	name := state.Name()
	for _, rule := range l.Rules {
		if !plugin.Name(rule.NameScope).Matches(name) {
			continue
		}
		rrw := newRecorder(w)
		rc, err := plugin.NextOrFailure(l.Name(), l.Next, ctx, rrw, r)
		if rule.Class[All] || rule.Class[Classify(Typify(rrw.Msg, time.Now().UTC()))] {
			l.out.writeLine(rule.Format, &state, rrw)
		}
		return rc, err
	}
	return plugin.NextOrFailure(l.Name(), l.Next, ctx, w, r)
}

// recorder notes the answer the rest of the chain wrote.
type recorder struct {
	dns.ResponseWriter
	Rcode int
	Len   int
	Msg   *dns.Msg
	Start time.Time
}

func newRecorder(w dns.ResponseWriter) *recorder {
	return &recorder{ResponseWriter: w, Start: time.Now()}
}

// WriteMsg records and writes m.
func (r *recorder) WriteMsg(m *dns.Msg) error {
	r.Rcode = m.Rcode
	r.Len += m.Len()
	r.Msg = m
	return r.ResponseWriter.WriteMsg(m)
}

// Write records the length of what is written.
func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	if err == nil {
		r.Len += n
	}
	return n, err
}

// lineWriter writes whole lines, one at a time.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineWriter(w io.Writer) *lineWriter { return &lineWriter{w: w} }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// writeLine writes "[INFO] " and the formatted line, as CoreDNS's
// log.Info does.
func (lw *lineWriter) writeLine(f format, state *request.Request, rr *recorder) {
	p := bufPool.Get().(*[]byte)
	b := append((*p)[:0], "[INFO] "...)
	b = f.append(b, state, rr)
	b = append(b, '\n')
	lw.mu.Lock()
	lw.w.Write(b)
	lw.mu.Unlock()
	*p = b[:0]
	bufPool.Put(p)
}

// format is a compiled log format: literals and placeholders.
type format []node

type node struct {
	value string
	label bool
}

// labels are the placeholders CoreDNS knows; {/NAME} metadata labels
// give "-" (there is no metadata plugin).
var labels = map[string]bool{
	"{type}": true, "{name}": true, "{class}": true, "{proto}": true, "{size}": true,
	"{remote}": true, "{port}": true, "{local}": true,
	"{>id}": true, "{>opcode}": true, "{>do}": true, "{>bufsize}": true,
	"{rcode}": true, "{rsize}": true, "{duration}": true, "{>rflags}": true,
}

// compile splits a format as CoreDNS's replacer.parseFormat does.
func compile(s string) format {
	var f format
	for {
		j := strings.IndexByte(s, '}')
		if j < 0 {
			break
		}
		i := strings.LastIndexByte(s[:j], '{')
		if i < 0 {
			f = append(f, node{value: s[:j+1]})
			s = s[j+1:]
			continue
		}
		val := s[i : j+1]
		switch {
		case labels[val]:
			if i != 0 {
				f = append(f, node{value: s[:i]})
			}
			f = append(f, node{value: val, label: true})
		case strings.HasPrefix(val, "{/"):
			if i != 0 {
				f = append(f, node{value: s[:i]})
			}
			f = append(f, node{value: EmptyValue})
		default:
			f = append(f, node{value: s[:j+1]})
		}
		s = s[j+1:]
	}
	if s != "" {
		f = append(f, node{value: s})
	}
	return f
}

func (f format) append(b []byte, state *request.Request, rr *recorder) []byte {
	for _, n := range f {
		if n.label {
			b = appendValue(b, state, rr, n.value)
		} else {
			b = append(b, n.value...)
		}
	}
	return b
}

func appendValue(b []byte, state *request.Request, rr *recorder, label string) []byte {
	switch label {
	case "{rcode}":
		if rr == nil || rr.Msg == nil {
			return append(b, EmptyValue...)
		}
		if s := dns.RcodeToString[rr.Rcode]; s != "" {
			return append(b, s...)
		}
		return strconv.AppendInt(b, int64(rr.Rcode), 10)
	case "{rsize}":
		return strconv.AppendInt(b, int64(rr.Len), 10)
	case "{duration}":
		return append(strconv.AppendFloat(b, time.Since(rr.Start).Seconds(), 'f', -1, 64), 's')
	case "{>rflags}":
		if rr.Msg != nil {
			return appendFlags(b, rr.Msg.MsgHdr)
		}
		return append(b, EmptyValue...)
	case "{type}":
		return append(b, state.Type()...)
	case "{name}":
		return append(b, state.Name()...)
	case "{class}":
		return append(b, state.Class()...)
	case "{proto}":
		return append(b, state.Proto()...)
	case "{size}":
		return strconv.AppendInt(b, int64(state.Req.Len()), 10)
	case "{remote}":
		return appendAddr(b, state.IP())
	case "{port}":
		return append(b, state.Port()...)
	case "{local}":
		return appendAddr(b, state.LocalIP())
	case "{>id}":
		return strconv.AppendInt(b, int64(state.Req.Id), 10)
	case "{>opcode}":
		return strconv.AppendInt(b, int64(state.Req.Opcode), 10)
	case "{>do}":
		return strconv.AppendBool(b, state.Do())
	case "{>bufsize}":
		return strconv.AppendInt(b, int64(state.Size()), 10)
	}
	return append(b, EmptyValue...)
}

func appendFlags(b []byte, h dns.MsgHdr) []byte {
	start := len(b)
	for _, f := range []struct {
		set  bool
		name string
	}{
		{h.Response, "qr,"}, {h.Authoritative, "aa,"}, {h.Truncated, "tc,"}, {h.RecursionDesired, "rd,"},
		{h.RecursionAvailable, "ra,"}, {h.Zero, "z,"}, {h.AuthenticatedData, "ad,"}, {h.CheckingDisabled, "cd,"},
	} {
		if f.set {
			b = append(b, f.name...)
		}
	}
	if len(b) > start {
		return b[:len(b)-1]
	}
	return b
}

// appendAddr writes an address as RFC 3986 does: IPv6 in brackets.
func appendAddr(b []byte, addr string) []byte {
	if strings.IndexByte(addr, ':') >= 0 {
		b = append(b, '[')
		b = append(b, addr...)
		return append(b, ']')
	}
	return append(b, addr...)
}
