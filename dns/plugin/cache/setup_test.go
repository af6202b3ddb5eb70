package cache

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSetup(t *testing.T) {
	tests := []struct {
		name     string
		input    string
		wantErr  string
		zones    []string
		ncap     int
		pcap     int
		nttl     time.Duration
		minnttl  time.Duration
		pttl     time.Duration
		minpttl  time.Duration
		prefetch int
		check    func(t *testing.T, c *Cache)
	}{
		{name: "defaults: max TTL 3600 success / 1800 denial, min 5, capacity 9984", input: "cache", zones: []string{"."},
			ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL,
			check: func(t *testing.T, c *Cache) {
				if c.pcache.shards[0].size*shardSize != 9984 {
					t.Errorf("capacity %d, want 256 shards * 39 = 9984", c.pcache.shards[0].size*shardSize)
				}
				if c.failttl != 5*time.Second {
					t.Errorf("servfail %v, want 5s", c.failttl)
				}
				if c.duration != time.Minute || c.percentage != 10 {
					t.Errorf("prefetch duration %v percentage %d", c.duration, c.percentage)
				}
			}},
		{name: "empty block", input: "cache {\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL},
		{name: "success CAPACITY", input: "cache example.nl {\nsuccess 10\n}", zones: []string{"example.nl."}, ncap: defaultCap, pcap: 10, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL,
			check: func(t *testing.T, c *Cache) {
				if c.pcache.shards[0].size != 4 {
					t.Errorf("shard size %d, want the minimum 4 (1024 entries)", c.pcache.shards[0].size)
				}
			}},
		{name: "success CAPACITY TTL MINTTL", input: "cache example.nl {\nsuccess 10 1800 30\n}", zones: []string{"example.nl."}, ncap: defaultCap, pcap: 10, nttl: maxNTTL, minnttl: minNTTL, pttl: 1800 * time.Second, minpttl: 30 * time.Second},
		{name: "denial CAPACITY TTL", input: "cache example.nl {\nsuccess 10\ndenial 10 15\n}", zones: []string{"example.nl."}, ncap: 10, pcap: 10, nttl: 15 * time.Second, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL},
		{name: "denial CAPACITY TTL MINTTL", input: "cache example.nl {\nsuccess 10\ndenial 10 15 2\n}", zones: []string{"example.nl."}, ncap: 10, pcap: 10, nttl: 15 * time.Second, minnttl: 2 * time.Second, pttl: maxTTL, minpttl: minTTL},
		{name: "cache TTL ZONES with denial TTL", input: "cache 25 example.nl {\nsuccess 10\ndenial 10 15\n}", zones: []string{"example.nl."}, ncap: 10, pcap: 10, nttl: 15 * time.Second, minnttl: minNTTL, pttl: 25 * time.Second, minpttl: minTTL},
		{name: "a first argument that is not a number is a zone", input: "cache aaa example.nl", zones: []string{"aaa.", "example.nl."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL},
		{name: "cache TTL caps both", input: "cache 300", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: 300 * time.Second, minnttl: minNTTL, pttl: 300 * time.Second, minpttl: minTTL},
		{name: "a reverse zone in CIDR notation", input: "cache 10.0.0.0/8", zones: []string{"10.in-addr.arpa."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL},
		{name: "prefetch AMOUNT", input: "cache {\nprefetch 10\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL, prefetch: 10},
		{name: "prefetch AMOUNT DURATION PERCENTAGE%", input: "cache {\nprefetch 2 30s 50%\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL, prefetch: 2,
			check: func(t *testing.T, c *Cache) {
				if c.duration != 30*time.Second || c.percentage != 50 {
					t.Errorf("duration %v percentage %d", c.duration, c.percentage)
				}
			}},
		{name: "serve_stale defaults to 1h immediate", input: "cache {\nserve_stale\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL,
			check: func(t *testing.T, c *Cache) {
				if c.staleUpTo != time.Hour || c.verifyStale {
					t.Errorf("staleUpTo %v verify %v", c.staleUpTo, c.verifyStale)
				}
			}},
		{name: "serve_stale DURATION verify", input: "cache {\nserve_stale 20m verify\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL,
			check: func(t *testing.T, c *Cache) {
				if c.staleUpTo != 20*time.Minute || !c.verifyStale {
					t.Errorf("staleUpTo %v verify %v", c.staleUpTo, c.verifyStale)
				}
			}},
		{name: "servfail DURATION", input: "cache {\nservfail 1m\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL,
			check: func(t *testing.T, c *Cache) {
				if c.failttl != time.Minute {
					t.Errorf("failttl %v", c.failttl)
				}
			}},
		{name: "disable success ZONES", input: "cache {\ndisable success example.org Example.NET.\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL,
			check: func(t *testing.T, c *Cache) {
				if !reflect.DeepEqual(c.pexcept, []string{"example.org.", "example.net."}) || c.nexcept != nil {
					t.Errorf("pexcept %v nexcept %v", c.pexcept, c.nexcept)
				}
			}},
		{name: "disable denial without zones: all", input: "cache {\ndisable denial\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL,
			check: func(t *testing.T, c *Cache) {
				if !reflect.DeepEqual(c.nexcept, []string{"."}) {
					t.Errorf("nexcept %v", c.nexcept)
				}
			}},
		{name: "keepttl", input: "cache {\nkeepttl\n}", zones: []string{"."}, ncap: defaultCap, pcap: defaultCap, nttl: maxNTTL, minnttl: minNTTL, pttl: maxTTL, minpttl: minTTL,
			check: func(t *testing.T, c *Cache) {
				if !c.keepttl {
					t.Error("keepttl not set")
				}
			}},

		{name: "success without CAPACITY", input: "cache example.nl {\nsuccess\ndenial 10 15\n}", wantErr: "Wrong argument count"},
		{name: "denial CAPACITY not a number", input: "cache example.nl {\nsuccess 15\ndenial aaa\n}", wantErr: "denial: capacity"},
		{name: "unknown property", input: "cache example.nl {\npositive 15\nnegative aaa\n}", wantErr: "Corefile:2"},
		{name: "TTL 0 is reserved", input: "cache 0 example.nl", wantErr: "cache TTL can not be zero or negative: 0"},
		{name: "negative TTL", input: "cache -1 example.nl", wantErr: "cache TTL can not be zero or negative: -1"},
		{name: "success TTL 0", input: "cache {\nsuccess 10 0\n}", wantErr: "can not be zero or negative"},
		{name: "negative MINTTL", input: "cache {\ndenial 10 10 -1\n}", wantErr: "cache min TTL can not be negative"},
		{name: "negative prefetch", input: "cache 1 example.nl {\nprefetch -1\n}", wantErr: "prefetch amount should be positive"},
		{name: "prefetch DURATION not a duration", input: "cache 1 example.nl {\nprefetch 0 blurp\n}", wantErr: "prefetch"},
		{name: "prefetch percentage without %", input: "cache {\nprefetch 1 10s 50\n}", wantErr: "last character of percentage should be `%`"},
		{name: "prefetch with an empty (quoted) percentage", input: "cache {\nprefetch 1 10s \"\"\n}", wantErr: "empty percentage"},
		{name: "prefetch percentage out of [10, 90]", input: "cache {\nprefetch 1 10s 95%\n}", wantErr: "percentage should fall in range [10, 90]: 95"},
		{name: "serve_stale negative", input: "cache {\nserve_stale -1s\n}", wantErr: "invalid negative duration for serve_stale"},
		{name: "serve_stale bad mode", input: "cache {\nserve_stale 1h later\n}", wantErr: "invalid value for serve_stale refresh mode: later"},
		{name: "servfail over 5 minutes (RFC 2308)", input: "cache {\nservfail 6m\n}", wantErr: "caching SERVFAIL responses over 5 minutes is not permitted"},
		{name: "servfail negative", input: "cache {\nservfail -1s\n}", wantErr: "invalid negative ttl for servfail"},
		{name: "disable an unknown cache", input: "cache {\ndisable both\n}", wantErr: `cache type for disable must be "success" or "denial"`},
		{name: "keepttl takes no argument", input: "cache {\nkeepttl yes\n}", wantErr: "Wrong argument count"},
		{name: "only once per server block", input: "cache\ncache", wantErr: "this plugin can only be used once per Server Block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cacheParse(controller(tc.input, nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "Corefile:") {
					t.Errorf("error %q does not name the file and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Zones, tc.zones) {
				t.Errorf("zones %v, want %v", c.Zones, tc.zones)
			}
			if c.ncap != tc.ncap || c.pcap != tc.pcap {
				t.Errorf("ncap %d pcap %d, want %d %d", c.ncap, c.pcap, tc.ncap, tc.pcap)
			}
			if c.nttl != tc.nttl || c.minnttl != tc.minnttl || c.pttl != tc.pttl || c.minpttl != tc.minpttl {
				t.Errorf("nttl %v minnttl %v pttl %v minpttl %v", c.nttl, c.minnttl, c.pttl, c.minpttl)
			}
			if c.prefetch != tc.prefetch {
				t.Errorf("prefetch %d, want %d", c.prefetch, tc.prefetch)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// "If empty, the zones from the configuration block are used."
func TestSetupZonesFromServerBlock(t *testing.T) {
	c, err := cacheParse(controller("cache", nil, "example.org.", "example.net."))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Zones, []string{"example.org.", "example.net."}) || c.zonesMetricLabel != "example.org.,example.net." {
		t.Errorf("zones %v label %q", c.Zones, c.zonesMetricLabel)
	}
}

// FuzzSetup: any cache line parses or fails with an error, never a panic.
func FuzzSetup(f *testing.F) {
	for _, s := range []string{
		"cache",
		"cache 30 example.org 10.0.0.0/8 {\nsuccess 1000 60 5\ndenial 100 30 1\nprefetch 2 1m 20%\nserve_stale 1h verify\nservfail 1s\ndisable success a.org\nkeepttl\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		cacheParse(controller(input, nil))
	})
}
