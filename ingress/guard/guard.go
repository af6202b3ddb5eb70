// Package guard owns the ingress controller's defence against HTTP/1
// request smuggling that net/http cannot give: it follows the framing of
// the request stream of a connection (heads, Content-Length bodies,
// chunked bodies) and refuses a request whose head carries both
// Content-Length and Transfer-Encoding, or more header fields than
// allowed, before net/http sees it. net/http would accept such a request
// and let Transfer-Encoding win (RFC 9112 section 6.3 allows that); a
// front proxy that refuses it leaves no room for a back end that reads it
// the other way: "A server MAY reject a request that contains both
// Content-Length and Transfer-Encoding or process such a request in
// accordance with the Transfer-Encoding alone. Regardless, the server MUST
// close the connection after responding to such a request" (RFC 9112
// section 6.1).
//
// A refused request makes the connection's Read fail with an *Error;
// net/http then answers "400 Bad Request" and closes the connection.
// Anything the guard does not understand (an upgrade, a framing error
// net/http will report itself) turns it into a pass-through: it never
// refuses a request net/http would have parsed differently for a reason
// other than the ones above. It does not route, proxy or log.
package guard

import (
	"bytes"
	"net"
	"strconv"
	"strings"
)

// DefaultMaxHeaders is the default limit on header fields of a request.
const DefaultMaxHeaders = 100

// Error is why a request was refused.
type Error struct{ Reason string }

func (e *Error) Error() string { return "guard: " + e.Reason }

// Listener wraps each accepted connection with Conn.
type Listener struct {
	net.Listener
	MaxHeaders   int // 0: DefaultMaxHeaders
	MaxHeadBytes int // the head size beyond which the guard stops looking (net/http enforces its own limit); 0: 1 MiB
	OnRefuse     func(c net.Conn, err *Error)
}

// Accept accepts and wraps a connection.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.Wrap(c), nil
}

// Wrap wraps one connection.
func (l *Listener) Wrap(c net.Conn) net.Conn {
	max := l.MaxHeaders
	if max <= 0 {
		max = DefaultMaxHeaders
	}
	mh := l.MaxHeadBytes
	if mh <= 0 {
		mh = 1 << 20
	}
	return &Conn{Conn: c, maxHeaders: max, maxHead: mh, onRefuse: l.OnRefuse}
}

type state uint8

const (
	sHead        state = iota // reading a request head
	sBody                     // skipping remaining Content-Length bytes
	sChunkSize                // reading a chunk-size line
	sChunkData                // skipping chunk data
	sChunkCRLF                // the CRLF after chunk data
	sTrailer                  // trailer fields up to the empty line
	sPassThrough              // not following any more
	sRefused
)

// Conn follows the request framing of the bytes read from it.
type Conn struct {
	net.Conn
	maxHeaders int
	maxHead    int
	onRefuse   func(net.Conn, *Error)

	st     state
	cur    []byte // the current line so far
	head   []byte // the complete lines of the head so far
	remain int64  // body or chunk bytes still to skip
	headAt int    // offset in the current Read where the head being read began
	err    *Error
}

// Read reads and checks; a refused request ends the stream with *Error.
func (c *Conn) Read(p []byte) (int, error) {
	if c.st == sRefused {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.st != sPassThrough {
		if e := c.feed(p[:n]); e != nil {
			c.st, c.err = sRefused, e
			if c.onRefuse != nil {
				c.onRefuse(c.Conn, e)
			}
			// The requests before the refused one are delivered; the
			// next Read fails.
			if c.headAt > 0 {
				return c.headAt, nil
			}
			return 0, e
		}
	}
	return n, err
}

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

func (c *Conn) feed(b []byte) *Error {
	total := len(b)
	c.headAt = 0
	for len(b) > 0 {
		switch c.st {
		case sPassThrough:
			return nil
		case sHead, sTrailer, sChunkSize:
			if c.st == sHead && len(c.head) == 0 && len(c.cur) == 0 {
				c.headAt = total - len(b)
			}
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.cur = append(c.cur, b...)
				if len(c.cur)+len(c.head) > c.maxHead {
					c.st = sPassThrough
				}
				return nil
			}
			c.cur = append(c.cur, b[:i+1]...)
			b = b[i+1:]
			l := c.cur
			c.cur = c.cur[:0]
			if err := c.line(l); err != nil {
				return err
			}
		case sBody, sChunkData:
			k := int64(len(b))
			if k > c.remain {
				k = c.remain
			}
			c.remain -= k
			b = b[k:]
			if c.remain == 0 {
				if c.st == sBody {
					c.st = sHead
				} else {
					c.st = sChunkCRLF
				}
			}
		case sChunkCRLF:
			// "\r\n" (or a bare "\n") after the chunk data.
			switch b[0] {
			case '\r':
				b = b[1:]
			case '\n':
				b = b[1:]
				c.st = sChunkSize
			default:
				c.st = sPassThrough
			}
		}
	}
	return nil
}

// line handles a complete line l (shared buffer: used before return).
func (c *Conn) line(l []byte) *Error {
	switch c.st {
	case sChunkSize:
		v := strings.TrimRight(string(l), "\r\n")
		if i := strings.IndexByte(v, ';'); i >= 0 {
			v = v[:i]
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 16, 64)
		switch {
		case err != nil || n < 0:
			c.st = sPassThrough // net/http reports the malformed chunk
		case n == 0:
			c.st = sTrailer
		default:
			c.st, c.remain = sChunkData, n
		}
		return nil
	case sTrailer:
		if isBlank(l) {
			c.st = sHead
		}
		return nil
	}
	// sHead: empty lines before a request line are ignored, as net/http
	// does; a head ends with an empty line.
	if !isBlank(l) {
		c.head = append(c.head, l...)
		if len(c.head) > c.maxHead {
			c.st = sPassThrough
		}
		return nil
	}
	if len(c.head) == 0 {
		return nil
	}
	err := c.request(c.head)
	c.head = c.head[:0]
	return err
}

func isBlank(l []byte) bool { return len(bytes.TrimRight(l, "\r\n")) == 0 }

// request checks a complete head and sets up the body framing (head is
// a shared buffer: used before return, without copies on the hot path).
func (c *Conn) request(head []byte) *Error {
	first, rest, _ := bytes.Cut(head, []byte("\n"))
	var cl [][]byte
	var te [][]byte
	upgrade, fields := false, 0
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		l = bytes.TrimRight(l, "\r")
		if len(l) == 0 {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			continue // obsolete line folding: net/http refuses it
		}
		fields++
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			c.st = sPassThrough
			return nil
		}
		value = bytes.TrimSpace(value)
		name = bytes.TrimSpace(name)
		switch {
		case asciiEqualFold(name, "content-length"):
			cl = append(cl, value)
		case asciiEqualFold(name, "transfer-encoding"):
			te = append(te, value)
		case asciiEqualFold(name, "upgrade"):
			upgrade = true
		}
	}
	if fields > c.maxHeaders {
		return &Error{Reason: "request has " + strconv.Itoa(fields) + " header fields, more than the " + strconv.Itoa(c.maxHeaders) + " allowed"}
	}
	if len(cl) > 0 && len(te) > 0 {
		return &Error{Reason: "request has both Content-Length and Transfer-Encoding"}
	}
	switch {
	case upgrade || bytes.HasPrefix(first, []byte("CONNECT ")) || bytes.HasPrefix(first, []byte("PRI ")):
		// After a protocol switch the bytes are not HTTP/1 requests.
		c.st = sPassThrough
	case len(te) > 0:
		v := strings.ToLower(string(bytes.Join(te, []byte(","))))
		if strings.TrimSpace(v) == "chunked" {
			c.st = sChunkSize
		} else {
			c.st = sPassThrough // net/http answers 501 to other codings
		}
	case len(cl) > 0:
		n, err := strconv.ParseInt(string(cl[0]), 10, 64)
		for _, v := range cl[1:] {
			if !bytes.Equal(v, cl[0]) {
				err = strconv.ErrSyntax
			}
		}
		switch {
		case err != nil || n < 0:
			c.st = sPassThrough // net/http refuses a bad or repeated-different Content-Length
		case n == 0:
			c.st = sHead
		default:
			c.st, c.remain = sBody, n
		}
	default:
		c.st = sHead
	}
	return nil
}

// asciiEqualFold compares b with a lower-case ASCII name, folding ASCII
// letters only (as net/http reads field names).
func asciiEqualFold(b []byte, lower string) bool {
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
