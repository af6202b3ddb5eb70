package kubernetes

import (
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"
)

// cowMap is a map read without locks by any number of goroutines and
// written by one: its keys are spread over shards, each an immutable Go map
// behind an atomic pointer. A writer changes a private copy of the shards
// it touches (set, del) and publish swaps them in, so a reader sees every
// shard either before or after a batch, never half-written, and a change
// costs a copy of one shard rather than of the whole map.
type cowMap[K comparable, V any] struct {
	shards []atomic.Pointer[map[K]V]
	mask   uint64
	hash   func(K) uint64
	dirty  map[uint64]map[K]V // writer only: shards copied and changed since the last publish
}

func newCowMap[K comparable, V any](shards int, hash func(K) uint64) *cowMap[K, V] {
	n := 1
	for n < shards {
		n <<= 1
	}
	return &cowMap[K, V]{
		shards: make([]atomic.Pointer[map[K]V], n),
		mask:   uint64(n - 1),
		hash:   hash,
		dirty:  map[uint64]map[K]V{},
	}
}

// get reads the published value of k.
func (c *cowMap[K, V]) get(k K) (V, bool) {
	p := c.shards[c.hash(k)&c.mask].Load()
	if p == nil {
		var zero V
		return zero, false
	}
	v, ok := (*p)[k]
	return v, ok
}

// writable returns the writer's copy of k's shard.
func (c *cowMap[K, V]) writable(k K) map[K]V {
	i := c.hash(k) & c.mask
	if m, ok := c.dirty[i]; ok {
		return m
	}
	var m map[K]V
	if p := c.shards[i].Load(); p != nil {
		m = make(map[K]V, len(*p)+1)
		for kk, vv := range *p {
			m[kk] = vv
		}
	} else {
		m = map[K]V{}
	}
	c.dirty[i] = m
	return m
}

// pending reads k as the writer sees it: its unpublished changes included.
func (c *cowMap[K, V]) pending(k K) (V, bool) {
	if m, ok := c.dirty[c.hash(k)&c.mask]; ok {
		v, ok := m[k]
		return v, ok
	}
	return c.get(k)
}

func (c *cowMap[K, V]) set(k K, v V) { c.writable(k)[k] = v }

func (c *cowMap[K, V]) del(k K) {
	if _, ok := c.pending(k); !ok {
		return
	}
	delete(c.writable(k), k)
}

// publish makes the writer's changes visible; it reports whether there were any.
func (c *cowMap[K, V]) publish() bool {
	if len(c.dirty) == 0 {
		return false
	}
	for i, m := range c.dirty {
		c.shards[i].Store(&m)
		delete(c.dirty, i)
	}
	return true
}

// len counts the published entries (tests and memory figures only).
func (c *cowMap[K, V]) len() int {
	n := 0
	for i := range c.shards {
		if p := c.shards[i].Load(); p != nil {
			n += len(*p)
		}
	}
	return n
}

var hashSeed = maphash.MakeSeed()

func hashString(s string) uint64 { return maphash.String(hashSeed, s) }

// ipKey is an address as 16 bytes (IPv4 as IPv4-mapped IPv6), the key of
// the reverse indexes.
type ipKey [16]byte

func hashIP(k ipKey) uint64 {
	a := binary.LittleEndian.Uint64(k[0:8])
	b := binary.LittleEndian.Uint64(k[8:16])
	h := a*0x9e3779b97f4a7c15 ^ b
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
