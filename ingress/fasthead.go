package ingress

import "bytes"

// The HTTP/1.1 head parsers of the fast path (fastpath.go). They are
// deliberately narrow: a request head is taken only in the plainest form
// (GET or HEAD, origin-form target of a conservative alphabet, HTTP/1.1,
// CRLF lines, token names, one Host, no body framing, no Upgrade or
// Expect, Connection only "close"/"keep-alive"); anything else is
// "unsupported" and the connection goes to net/http, which answers as it
// always did (400, 431, 501, h2c, WebSocket, bodies). So the fast path
// never accepts what net/http would refuse, and never refuses anything.

// headStatus is the outcome of parsing the bytes read so far.
type headStatus uint8

const (
	headIncomplete  headStatus = iota // more bytes needed
	headComplete                      // a whole head, taken by the fast path
	headUnsupported                   // net/http's business
)

// span is [start, end) in the parsed buffer.
type span struct{ s, e int }

func (s span) of(b []byte) []byte { return b[s.s:s.e] }

// fastReq is a parsed request head; spans point into the buffer parsed.
type fastReq struct {
	head       bool // HEAD, else GET
	target     span // request-target
	path       span // its path
	query      span // after '?' (empty span: none)
	hasQuery   bool // a '?' was present (even with an empty query)
	plainPath  bool // the path is already in normal form and needs no escaping
	host       span
	requestID  span // first X-Request-Id; empty: none
	close      bool // Connection: close
	teTrailers bool // TE names "trailers"
	fields     int  // header fields
	keep       []span
}

func (r *fastReq) reset() {
	keep := r.keep[:0]
	*r = fastReq{keep: keep}
}

// tchar: RFC 9110 section 5.6.2 token characters.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// pathPlain are path bytes that url.URL.EscapedPath leaves alone and
// NormalizePath does not change (no '%'); pathOK adds those a request may
// carry that need the slow normalisation (escapes, sub-delims
// EscapedPath re-encodes). Any other byte sends the request to net/http.
var pathPlain, pathOK = func() (plain, ok [256]bool) {
	for c := '0'; c <= '9'; c++ {
		plain[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		plain[c] = true
		plain[c-'a'+'A'] = true
	}
	for _, c := range "-._~/$&+,:;=@" {
		plain[c] = true
	}
	ok = plain
	for _, c := range "%!'()*" {
		ok[c] = true
	}
	return
}()

// hostChar: what a Host header of the fast path may hold (a reg-name,
// an IPv4 or bracketed IPv6 address, a port).
var hostChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "-._:[]" {
		t[c] = true
	}
	return
}()

// validValue: a field value without CTLs other than HTAB (obs-text is
// allowed), as net/http's httpguts.ValidHeaderFieldValue.
func validValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// equalFold compares b with a lower-case ASCII name.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// eachToken calls f with each comma-separated token of a list value,
// trimmed; f returns false to stop.
func eachToken(v []byte, f func(tok []byte) bool) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		if tok = trimOWS(tok); len(tok) > 0 && !f(tok) {
			return
		}
	}
}

// dropRequest are the request fields the fast path does not pass on:
// hop-by-hop fields (RFC 9110 section 7.6.1, and the ones
// httputil.ReverseProxy removes) and the forwarding fields the ingress
// sets itself (the ingress is the edge: a client's are not trusted).
var dropRequest = []string{
	"keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "trailer",
	"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-real-ip",
}

// parseRequestHead parses a request head at the start of b. It returns
// the head's length when complete. maxFields is the header field limit;
// maxBytes the head size limit (beyond either: unsupported, net/http
// applies its limits).
func parseRequestHead(b []byte, r *fastReq, maxFields, maxBytes int) (int, headStatus) {
	r.reset()
	switch {
	case bytes.HasPrefix(b, []byte("GET ")):
	case bytes.HasPrefix(b, []byte("HEAD ")):
		r.head = true
	case len(b) < 5 && (bytes.HasPrefix([]byte("GET "), b) || bytes.HasPrefix([]byte("HEAD "), b)):
		return 0, headIncomplete
	default:
		return 0, headUnsupported
	}
	if len(b) > maxBytes {
		b = b[:maxBytes]
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		if len(b) == maxBytes {
			return 0, headUnsupported
		}
		return 0, headIncomplete
	}
	line := b[:nl]
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return 0, headUnsupported
	}
	line = line[:len(line)-1]
	start := 4
	if r.head {
		start = 5
	}
	const proto = " HTTP/1.1"
	if !bytes.HasSuffix(line, []byte(proto)) || len(line)-len(proto) <= start {
		return 0, headUnsupported
	}
	r.target = span{start, len(line) - len(proto)}
	if b[start] != '/' {
		return 0, headUnsupported
	}
	r.plainPath = true
	r.path = r.target
	inQuery := false
	prev := byte(0)
	for i := r.target.s; i < r.target.e; i++ {
		c := b[i]
		if inQuery {
			if c <= ' ' || c >= 0x7f || c == '#' {
				return 0, headUnsupported
			}
			continue
		}
		switch {
		case c == '?':
			inQuery, r.hasQuery = true, true
			r.path.e = i
			r.query = span{i + 1, r.target.e}
		case pathPlain[c]:
			// "//", "/./" and "/../" (and a trailing "/." or "/..") need
			// normalising.
			if c == '/' && (prev == '/' || isDotSegmentEnd(b[r.target.s:i])) {
				r.plainPath = false
			}
		case pathOK[c]:
			r.plainPath = false
			if c == '%' && (i+2 >= r.target.e || !ishexb(b[i+1]) || !ishexb(b[i+2])) {
				return 0, headUnsupported
			}
		default:
			return 0, headUnsupported
		}
		prev = c
	}
	if r.plainPath && isDotSegmentEnd(b[r.path.s:r.path.e]) {
		r.plainPath = false
	}

	hostSeen := false
	pos := nl + 1
	for {
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 0 {
			if len(b) == maxBytes {
				return 0, headUnsupported
			}
			return 0, headIncomplete
		}
		end := pos + nl + 1
		line := b[pos : end-1]
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return 0, headUnsupported // a bare LF
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			if !hostSeen {
				return 0, headUnsupported // net/http: 400 missing Host
			}
			return end, headComplete
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, headUnsupported // also obs-fold: a line beginning with SP/HTAB
		}
		name := line[:colon]
		for _, c := range name {
			if !tchar[c] {
				return 0, headUnsupported
			}
		}
		raw := line[colon+1:]
		if !validValue(raw) {
			return 0, headUnsupported
		}
		value := trimOWS(raw)
		vs := pos + colon + 1 + (len(raw) - len(trimLeftOWS(raw)))
		vspan := span{vs, vs + len(value)}
		r.fields++
		if r.fields > maxFields {
			return 0, headUnsupported
		}
		keep := true
		switch len(name) {
		case 2:
			if equalFold(name, "te") {
				eachToken(value, func(t []byte) bool {
					if equalFold(t, "trailers") {
						r.teTrailers = true
					}
					return true
				})
				keep = false
			}
		case 4:
			if equalFold(name, "host") {
				if hostSeen || len(value) == 0 {
					return 0, headUnsupported
				}
				for _, c := range value {
					if !hostChar[c] {
						return 0, headUnsupported
					}
				}
				hostSeen, r.host, keep = true, vspan, false
			}
		case 6:
			if equalFold(name, "expect") {
				return 0, headUnsupported
			}
		case 7:
			if equalFold(name, "upgrade") {
				return 0, headUnsupported
			}
		case 10:
			if equalFold(name, "connection") {
				ok := true
				eachToken(value, func(t []byte) bool {
					switch {
					case equalFold(t, "close"):
						r.close = true
					case equalFold(t, "keep-alive"):
					default:
						ok = false // names other fields: net/http's
					}
					return ok
				})
				if !ok {
					return 0, headUnsupported
				}
				keep = false
			}
		case 12:
			if equalFold(name, "x-request-id") {
				if r.requestID == (span{}) {
					r.requestID = vspan
				}
				keep = false
			}
		case 14:
			if equalFold(name, "content-length") || equalFold(name, "http2-settings") {
				return 0, headUnsupported
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				return 0, headUnsupported
			}
		}
		if keep {
			for _, d := range dropRequest {
				if equalFold(name, d) {
					keep = false
					break
				}
			}
		}
		if keep {
			r.keep = append(r.keep, span{pos, end})
		}
		pos = end
	}
}

func trimLeftOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	return v
}

// isDotSegmentEnd reports whether p ends with the segment "." or "..".
func isDotSegmentEnd(p []byte) bool {
	return bytes.HasSuffix(p, []byte("/.")) || bytes.HasSuffix(p, []byte("/.."))
}

func ishexb(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// fastResp is a parsed response head from an endpoint.
type fastResp struct {
	status     span // "200 OK": code and reason after the version
	code       int
	http10     bool
	length     int64 // Content-Length; -1: none
	chunked    bool
	close      bool // Connection: close
	keepAlive  bool // Connection: keep-alive (HTTP/1.0)
	date       bool
	trailer    []span // Trailer fields (passed only with a chunked body)
	keep       []span // header lines passed on
	connTokens [4]span
	nConn      int
}

func (r *fastResp) reset() {
	keep, tr := r.keep[:0], r.trailer[:0]
	*r = fastResp{keep: keep, trailer: tr, length: -1}
}

// dropResponse are the hop-by-hop fields of a response (RFC 9110 section
// 7.6.1 and httputil.ReverseProxy's list).
var dropResponse = []string{"keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "upgrade"}

// errBadResponse is a response head the fast path does not pass on; the
// client gets 502, as net/http's Transport fails on the same heads.
type badResponseError string

func (e badResponseError) Error() string { return "upstream: malformed response head: " + string(e) }

// parseResponseHead parses a response head at the start of b.
func parseResponseHead(b []byte, r *fastResp) (int, headStatus, error) {
	r.reset()
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return 0, headIncomplete, nil
	}
	line := bytes.TrimSuffix(b[:nl], []byte("\r"))
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		r.http10 = true
	default:
		return 0, headUnsupported, badResponseError("status line")
	}
	if len(line) < 12 || len(line) > 12 && line[12] != ' ' {
		return 0, headUnsupported, badResponseError("status line")
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, headUnsupported, badResponseError("status code")
		}
		r.code = r.code*10 + int(c-'0')
	}
	if r.code < 100 || !validValue(line[9:]) {
		return 0, headUnsupported, badResponseError("status code")
	}
	r.status = span{9, len(line)}
	pos := nl + 1
	var te int
	for {
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 0 {
			return 0, headIncomplete, nil
		}
		end := pos + nl + 1
		line := bytes.TrimSuffix(b[pos:end-1], []byte("\r"))
		if len(line) == 0 {
			if te > 0 && !r.chunked {
				// net/http's Transport knows chunked only.
				return 0, headUnsupported, badResponseError("unsupported Transfer-Encoding")
			}
			if r.chunked {
				r.length = -1
			}
			return end, headComplete, nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return 0, headUnsupported, badResponseError("header line")
		}
		name := line[:colon]
		for _, c := range name {
			if !tchar[c] {
				return 0, headUnsupported, badResponseError("header name")
			}
		}
		raw := line[colon+1:]
		if !validValue(raw) {
			return 0, headUnsupported, badResponseError("header value")
		}
		value := trimOWS(raw)
		keep := true
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || r.length >= 0 && r.length != n {
				return 0, headUnsupported, badResponseError("Content-Length")
			}
			if r.length >= 0 {
				keep = false // a repeated equal value is passed once
			}
			r.length = n
		case equalFold(name, "transfer-encoding"):
			// net/http ignores Transfer-Encoding in an HTTP/1.0 message
			// (RFC 9112 section 6.1: such a message "MUST" be treated as
			// if the framing is faulty; net/http reads it to the close).
			if r.http10 {
				r.close = true
			} else {
				te++
				r.chunked = te == 1 && equalFold(value, "chunked")
			}
			keep = false
		case equalFold(name, "connection"):
			ok := true
			eachToken(value, func(t []byte) bool {
				switch {
				case equalFold(t, "close"):
					r.close = true
				case equalFold(t, "keep-alive"):
					r.keepAlive = true
				default:
					if r.nConn == len(r.connTokens) {
						ok = false
						return false
					}
					off := cap(b[:0]) - cap(t[:0]) // t's offset in b
					r.connTokens[r.nConn] = span{off, off + len(t)}
					r.nConn++
				}
				return true
			})
			if !ok {
				return 0, headUnsupported, badResponseError("Connection")
			}
			keep = false
		case equalFold(name, "trailer"):
			r.trailer = append(r.trailer, span{pos, end})
			keep = false
		case equalFold(name, "date"):
			r.date = true
		default:
			for _, d := range dropResponse {
				if equalFold(name, d) {
					keep = false
					break
				}
			}
		}
		if keep {
			r.keep = append(r.keep, span{pos, end})
		}
		pos = end
	}
}

// connNamed reports whether the response's Connection field names the
// field of the header line l (those are hop-by-hop too).
func (r *fastResp) connNamed(b, l []byte) bool {
	if r.nConn == 0 {
		return false
	}
	name := l[:bytes.IndexByte(l, ':')]
	for _, s := range r.connTokens[:r.nConn] {
		if bytes.EqualFold(name, s.of(b)) {
			return true
		}
	}
	return false
}

func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
