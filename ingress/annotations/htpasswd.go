package annotations

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// HtpasswdKey is the Secret key holding the htpasswd file (as
// ingress-nginx's auth-secret).
const HtpasswdKey = "auth"

// Htpasswd is a parsed htpasswd file: "user:hash" lines, hash bcrypt
// ($2a$, $2b$, $2y$) or {SHA} (base64 of SHA-1). Other schemes (MD5
// $apr1$, crypt, plain text) are refused when parsing.
type Htpasswd struct {
	users map[string]string
	// ok caches successful bcrypt checks (sha256 of user, NUL, password)
	// so that a client sending the same credentials does not cost a
	// bcrypt comparison per request.
	mu sync.Mutex
	ok map[[32]byte]struct{}
}

const okCacheMax = 4096

// ParseHtpasswd parses htpasswd data; errors name the line.
func ParseHtpasswd(data []byte) (*Htpasswd, error) {
	h := &Htpasswd{users: map[string]string{}, ok: map[[32]byte]struct{}{}}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		n := i + 1
		switch {
		case !ok || user == "":
			return nil, fmt.Errorf("line %d: want user:hash", n)
		case strings.ContainsAny(user, " \t"):
			return nil, fmt.Errorf("line %d: user name with white space", n)
		case h.users[user] != "":
			return nil, fmt.Errorf("line %d: user %q listed twice", n, user)
		}
		switch {
		case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				return nil, fmt.Errorf("line %d (user %q): bad bcrypt hash: %v", n, user, err)
			}
		case strings.HasPrefix(hash, "{SHA}"):
			b, err := base64.StdEncoding.DecodeString(hash[len("{SHA}"):])
			if err != nil || len(b) != sha1.Size {
				return nil, fmt.Errorf("line %d (user %q): bad {SHA} hash (want base64 of 20 bytes)", n, user)
			}
		case strings.HasPrefix(hash, "$apr1$"):
			return nil, fmt.Errorf("line %d (user %q): MD5 ($apr1$) hashes are not accepted; use bcrypt (htpasswd -B)", n, user)
		default:
			return nil, fmt.Errorf("line %d (user %q): unsupported hash; use bcrypt (htpasswd -B) or {SHA} (htpasswd -s)", n, user)
		}
		h.users[user] = hash
	}
	if len(h.users) == 0 {
		return nil, fmt.Errorf("no users")
	}
	return h, nil
}

// Check reports whether user and password match an entry.
func (h *Htpasswd) Check(user, password string) bool {
	hash, ok := h.users[user]
	if !ok {
		// Spend comparable time on unknown users.
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	if b64, ok := strings.CutPrefix(hash, "{SHA}"); ok {
		want, _ := base64.StdEncoding.DecodeString(b64)
		got := sha1.Sum([]byte(password))
		return subtle.ConstantTimeCompare(want, got[:]) == 1
	}
	key := sha256.Sum256(bytes.Join([][]byte{[]byte(user), []byte(password)}, []byte{0}))
	h.mu.Lock()
	_, cached := h.ok[key]
	h.mu.Unlock()
	if cached {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return false
	}
	h.mu.Lock()
	if len(h.ok) >= okCacheMax {
		clear(h.ok)
	}
	h.ok[key] = struct{}{}
	h.mu.Unlock()
	return true
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("switchboard"), bcrypt.MinCost)
