// Package cache is the DNS plugin "cache" of Switchboard, a port of
// CoreDNS 1.14.1's plugin/cache: a success and a denial cache in front of
// the next plugins, keyed like CoreDNS (FNV-64 of DO, CD, qtype and the
// lower-case qname), with CoreDNS's TTL caps, prefetch, serve_stale,
// servfail caching and zone exceptions. Answers are stored as packed wire
// bytes with the offsets of their TTL fields, so that a hit is a copy and a
// few patched bytes written with w.Write. Entries of plugins after it that
// report versions (plugin.Versioned, e.g. kubernetes) are dropped as soon
// as their version changes. It owns only its package and must not touch
// other plugins' state (it only reads their versions).
package cache

import (
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const (
	maxTTL  = 3600 * time.Second // success cap (CoreDNS dnsutil.MaximumDefaultTTL)
	minTTL  = 5 * time.Second    // CoreDNS dnsutil.MinimalDefaultTTL
	maxNTTL = maxTTL / 2         // denial cap
	minNTTL = minTTL

	defaultCap = 10000 // 256 shards of 39 = 9984 entries
	shardSize  = 256

	// Success is the cache type of positive answers.
	Success = "success"
	// Denial is the cache type of NXDOMAIN, NODATA and SERVFAIL answers.
	Denial = "denial"
)

// Cache is the plugin: a success (positive) and a denial (negative)
// cache.
type Cache struct {
	Next  plugin.Handler
	Zones []string

	zonesMetricLabel string
	viewMetricLabel  string

	ncache  *store
	ncap    int
	nttl    time.Duration
	minnttl time.Duration

	pcache  *store
	pcap    int
	pttl    time.Duration
	minpttl time.Duration
	failttl time.Duration // how long SERVFAIL answers are cached

	prefetch   int
	duration   time.Duration
	percentage int

	staleUpTo   time.Duration
	verifyStale bool

	pexcept []string
	nexcept []string

	keepttl bool

	// versioned are the plugins after the cache in its chain whose answers
	// follow changing data (plugin.Versioned, e.g. kubernetes); set at
	// startup. An entry stored under one version of its name is dropped
	// once the version differs.
	versioned []plugin.Versioned

	now func() time.Time

	metrics  *metrics
	labels   atomic.Pointer[counters] // for the last server label seen
	byServer sync.Map                 // server label -> *counters
	log      *slog.Logger
}

// New returns a Cache with CoreDNS's defaults for zone ".".
func New() *Cache {
	return &Cache{
		Zones:      []string{"."},
		pcap:       defaultCap,
		pcache:     newStore(defaultCap),
		pttl:       maxTTL,
		minpttl:    minTTL,
		ncap:       defaultCap,
		ncache:     newStore(defaultCap),
		nttl:       maxNTTL,
		minnttl:    minNTTL,
		failttl:    minNTTL,
		duration:   time.Minute,
		percentage: 10,
		now:        time.Now,
		metrics:    newMetrics(nil),
		log:        slog.Default(),
	}
}

// Name implements plugin.Handler.
func (c *Cache) Name() string { return "cache" }

// Len returns the number of entries in the success and denial caches.
func (c *Cache) Len() (success, denial int) { return c.pcache.Len(), c.ncache.Len() }

// FollowVersions makes the cache check the versions of handlers: those
// after self in chain (a block's handlers in chain order) that implement
// plugin.Versioned. Plugins before the cache do not make its answers.
func (c *Cache) FollowVersions(chain []plugin.Handler) {
	c.versioned = nil
	after := false
	for _, h := range chain {
		if after {
			if v, ok := h.(plugin.Versioned); ok {
				c.versioned = append(c.versioned, v)
			}
			continue
		}
		if h == plugin.Handler(c) {
			after = true
		}
	}
}

// version is the combined version of the answers for qname of the
// versioned plugins after the cache: 0 without any. With several, the
// numbers are mixed (FNV-1a steps: a change of any one changes the mix).
func (c *Cache) version(qname string) uint64 {
	switch len(c.versioned) {
	case 0:
		return 0
	case 1:
		return c.versioned[0].Version(qname)
	}
	h := uint64(14695981039346656037)
	for _, v := range c.versioned {
		h ^= v.Version(qname)
		h *= 1099511628211
	}
	return h
}

// seed makes the keys of this process unpredictable (no shard flooding).
var seed = maphash.MakeSeed()

// hash is the cache key. Its input is CoreDNS's key: the DO and CD bits
// (as '1' or '0'), the qtype (big endian) and the lower-case qname; the
// function is a seeded maphash instead of CoreDNS's FNV-1, which is
// several times slower on long (search path) names and predictable.
func hash(qname string, qtype uint16, do, cd bool) uint64 {
	var buf [4 + 256]byte
	buf[0], buf[1] = '0', '0'
	if do {
		buf[0] = '1'
	}
	if cd {
		buf[1] = '1'
	}
	buf[2], buf[3] = byte(qtype>>8), byte(qtype)
	if len(qname) > 256 {
		// only names with many \DDD escapes are this long
		var h maphash.Hash
		h.SetSeed(seed)
		h.Write(buf[:4])
		h.WriteString(strings.ToLower(qname))
		return h.Sum64()
	}
	n := 4 + copy(buf[4:], qname)
	for i := 4; i < n; i++ {
		if c := buf[i]; 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	return maphash.Bytes(seed, buf[:n])
}

// store is CoreDNS's pkg/cache: 256 shards, each a map with a lock and a
// capacity, evicting a random entry when full.
type store struct {
	shards [shardSize]shard
	n      atomic.Int64
}

type shard struct {
	sync.RWMutex
	items map[uint64]*item
	size  int
	_     [32]byte // keep shards on separate cache lines
}

func newStore(size int) *store {
	ssize := max(size/shardSize, 4)
	s := &store{}
	for i := range s.shards {
		s.shards[i].items = make(map[uint64]*item)
		s.shards[i].size = ssize
	}
	return s
}

// Add stores el under key, replacing an existing entry; when the shard
// is full it first evicts a random entry and reports it.
func (s *store) Add(key uint64, el *item) (evicted bool) {
	sh := &s.shards[key&(shardSize-1)]
	sh.Lock()
	_, exists := sh.items[key]
	if !exists && len(sh.items) >= sh.size {
		for k := range sh.items {
			delete(sh.items, k)
			evicted = true
			break
		}
	}
	sh.items[key] = el
	sh.Unlock()
	if !exists && !evicted {
		s.n.Add(1)
	}
	return evicted
}

// Get returns the entry under key.
func (s *store) Get(key uint64) (*item, bool) {
	sh := &s.shards[key&(shardSize-1)]
	sh.RLock()
	el, ok := sh.items[key]
	sh.RUnlock()
	return el, ok
}

// RemoveItem deletes the entry under key if it is still el (not one
// stored since by another query).
func (s *store) RemoveItem(key uint64, el *item) {
	sh := &s.shards[key&(shardSize-1)]
	sh.Lock()
	if cur, ok := sh.items[key]; ok && cur == el {
		delete(sh.items, key)
		s.n.Add(-1)
	}
	sh.Unlock()
}

// Remove deletes the entry under key.
func (s *store) Remove(key uint64) {
	sh := &s.shards[key&(shardSize-1)]
	sh.Lock()
	if _, ok := sh.items[key]; ok {
		delete(sh.items, key)
		s.n.Add(-1)
	}
	sh.Unlock()
}

// Len is the number of entries.
func (s *store) Len() int { return int(s.n.Load()) }
