package file

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Zone is one zone served from a file.
type Zone struct {
	origin  string
	origLen int

	mu   sync.RWMutex
	file string

	// data is the zone's records; a reload swaps in a new one.
	data atomic.Pointer[zoneData]

	// ReloadInterval is how often the file is checked; 0 never.
	ReloadInterval time.Duration

	startupOnce sync.Once
	stopOnce    sync.Once
	stop        chan struct{}
	done        chan struct{}

	logger *slog.Logger
}

// zoneData is the immutable content of a zone at one time.
type zoneData struct {
	Apex
	tree *tree
}

// Apex holds the records at the zone's apex: SOA, NS and their
// signatures.
type Apex struct {
	SOA    *dns.SOA
	NS     []dns.RR
	SIGSOA []dns.RR
	SIGNS  []dns.RR
}

// NewZone returns an empty zone for origin read from file.
func NewZone(origin, file string) *Zone {
	z := &Zone{
		origin:  dns.Fqdn(origin),
		origLen: dns.CountLabel(dns.Fqdn(origin)),
		file:    filepath.Clean(file),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		logger:  slog.Default(),
	}
	z.data.Store(&zoneData{tree: emptyTree})
	return z
}

var emptyTree = func() *tree { t := newTree(); t.finish(); return t }()

// Origin is the zone's name.
func (z *Zone) Origin() string { return z.origin }

// File returns the path of the zone's file.
func (z *Zone) File() string {
	z.mu.RLock()
	defer z.mu.RUnlock()
	return z.file
}

// SetFile changes the path of the zone's file.
func (z *Zone) SetFile(path string) {
	z.mu.Lock()
	z.file = path
	z.mu.Unlock()
}

// SOASerialIfDefined returns the SOA's serial, or -1 when the zone has no
// SOA (its file could not be read yet).
func (z *Zone) SOASerialIfDefined() int64 {
	if soa := z.data.Load().SOA; soa != nil {
		return int64(soa.Serial)
	}
	return -1
}

// Len is the number of owner names below the apex records.
func (z *Zone) Len() int { return z.data.Load().tree.Len() }

// builder collects the records of a zone being parsed.
type builder struct {
	origin string
	apex   Apex
	tree   *tree
}

// insert files rr as CoreDNS's Zone.Insert does: owner names lower case
// (except SRV's), NS, SOA, CNAME and MX targets lower case, SOA and apex
// NS (and their signatures) in the apex, NSEC3 refused.
func (b *builder) insert(r dns.RR) error {
	if r.Header().Rrtype != dns.TypeSRV {
		r.Header().Name = strings.ToLower(r.Header().Name)
	}
	switch x := r.(type) {
	case *dns.NS:
		x.Ns = strings.ToLower(x.Ns)
		if x.Hdr.Name == b.origin {
			b.apex.NS = append(b.apex.NS, r)
			return nil
		}
	case *dns.SOA:
		x.Ns = strings.ToLower(x.Ns)
		x.Mbox = strings.ToLower(x.Mbox)
		b.apex.SOA = x
		return nil
	case *dns.NSEC3, *dns.NSEC3PARAM:
		return fmt.Errorf("NSEC3 zone is not supported, dropping RR: %s for zone: %s", r.Header().Name, b.origin)
	case *dns.RRSIG:
		switch x.TypeCovered {
		case dns.TypeSOA:
			b.apex.SIGSOA = append(b.apex.SIGSOA, x)
			return nil
		case dns.TypeNS:
			if x.Hdr.Name == b.origin {
				b.apex.SIGNS = append(b.apex.SIGNS, x)
				return nil
			}
		}
	case *dns.CNAME:
		x.Target = strings.ToLower(x.Target)
	case *dns.MX:
		x.Mx = strings.ToLower(x.Mx)
	}
	b.tree.insert(r)
	return nil
}

// serialError says that the file's SOA serial is the one already loaded.
type serialError struct {
	origin, file string
	serial       int64
}

func (s *serialError) Error() string {
	return fmt.Sprintf("no change in SOA serial for origin %s in file %s, with %d SOA serial", s.origin, s.file, s.serial)
}

// Parse reads an RFC 1035 zone file for origin with miekg/dns's
// ZoneParser ($INCLUDE allowed, as in CoreDNS) and returns its zone. When
// serial >= 0 and the file's first SOA has that serial, nothing is loaded
// and a *serialError says so (a reload that finds no change). A file
// without SOA is an error.
func Parse(f io.Reader, origin, fileName string, serial int64) (*Zone, error) {
	return parseZone(f, origin, fileName, serial, true)
}

// parseZone is Parse with $INCLUDE allowed or not (the fuzz target must not
// read files the input names).
func parseZone(f io.Reader, origin, fileName string, serial int64, include bool) (*Zone, error) {
	origin = dns.Fqdn(strings.ToLower(origin))
	zp := dns.NewZoneParser(f, origin, fileName)
	zp.SetIncludeAllowed(include)
	b := &builder{origin: origin, tree: newTree()}
	seenSOA := false
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if !seenSOA {
			if s, ok := rr.(*dns.SOA); ok {
				seenSOA = true
				if serial >= 0 && int64(s.Serial) == serial {
					return nil, &serialError{origin: origin, file: fileName, serial: serial}
				}
			}
		}
		if err := b.insert(rr); err != nil {
			return nil, err
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("failed to parse file %q for origin %s with error %v", fileName, origin, err)
	}
	if !seenSOA {
		return nil, fmt.Errorf("file %q has no SOA record for origin %s", fileName, origin)
	}
	b.tree.finish()
	z := NewZone(origin, fileName)
	z.data.Store(&zoneData{Apex: b.apex, tree: b.tree})
	return z, nil
}

// nameFromRight returns the labels from the right, starting with the
// origin and then i labels more; shot is true when i overshoots qname.
func (z *Zone) nameFromRight(qname string, i int) (string, bool) {
	if i <= 0 {
		return z.origin, false
	}
	n := len(qname)
	for j := 1; j <= z.origLen; j++ {
		m, shot := dns.PrevLabel(qname[:n], 1)
		if shot {
			return qname, shot
		}
		n = m
	}
	for j := 1; j <= i; j++ {
		m, shot := dns.PrevLabel(qname[:n], 1)
		if shot {
			return qname, shot
		}
		n = m
	}
	return qname[n:], false
}
