package routing

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// Errors of NormalizePath; the proxy answers them with 400 Bad Request.
var (
	ErrNotAbsolute  = errors.New("path must begin with '/'")
	ErrBadEscape    = errors.New("path has an invalid percent-encoding")
	ErrEncodedSlash = errors.New("path has an encoded or literal separator ('%2F', '%5C' or '\\')")
	ErrControlChar  = errors.New("path has a control character")
	ErrAboveRoot    = errors.New("path climbs above the root with '..'")
)

// NormalizePath turns the escaped path of a request (url.URL.EscapedPath)
// into the one path the router matches and the backend receives, so that
// what is matched is what is served:
//
//   - it is percent-decoded once, so "/%61dmin" is "/admin" and the
//     encoded dot-segments "%2e%2e" are "..";
//   - an encoded '/' or '\' (%2F, %5C) and a literal '\' are refused:
//     decoded they would be separators the backend may see and the router
//     did not; a control character (NUL, CR, LF, ...) is refused too;
//   - empty segments ("//") and "." are dropped and ".." removes the
//     segment before it (RFC 3986 section 5.2.4, remove_dot_segments); a
//     ".." above the root is refused rather than silently clamped;
//   - a trailing slash is kept ("/foo/" stays "/foo/"): Exact paths tell
//     "/foo" and "/foo/" apart.
//
// The result is decoded (as Ingress paths are written); the proxy
// re-escapes it when it sends the request on.
func NormalizePath(escaped string) (string, error) {
	if !strings.HasPrefix(escaped, "/") {
		return "", ErrNotAbsolute
	}
	if strings.IndexByte(escaped, '\\') >= 0 {
		return "", ErrEncodedSlash
	}
	for i := 0; i < len(escaped); i++ {
		if escaped[i] != '%' {
			continue
		}
		if i+2 >= len(escaped) || !ishex(escaped[i+1]) || !ishex(escaped[i+2]) {
			return "", ErrBadEscape
		}
		switch strings.ToUpper(escaped[i+1 : i+3]) {
		case "2F", "5C":
			return "", ErrEncodedSlash
		}
		i += 2
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return "", ErrBadEscape
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return "", ErrControlChar
		}
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "", ".":
			trailing = trailing || last
		case "..":
			if len(out) == 0 {
				return "", ErrAboveRoot
			}
			out = out[:len(out)-1]
			trailing = trailing || last
		default:
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "/", nil
	}
	r := "/" + strings.Join(out, "/")
	if trailing {
		r += "/"
	}
	return r, nil
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// NormalizeHost turns a Host header (or :authority, or TLS server name)
// into the name rules are matched against: without the port, lower case,
// without a trailing dot. Rule hosts are DNS names and "IPs are not
// allowed", so an address simply matches no host rule.
func NormalizeHost(h string) string {
	if h == "" {
		return ""
	}
	if strings.IndexByte(h, ':') < 0 {
		// No port (and no IPv6 address): nothing to split.
	} else if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}
