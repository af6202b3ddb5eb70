package cache

import (
	"context"
	"math"
	"net"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// counters returns the metric children of this instance for the server
// answering the query of ctx (CoreDNS's metrics.WithServer label,
// "dns://:53"): resolved once per server label.
func (c *Cache) counters(ctx context.Context) *counters {
	server := dnsserver.ServerName(ctx)
	if k := c.labels.Load(); k != nil && k.server == server {
		return k
	}
	// Another server (a block bound to several addresses): the label's
	// own set, created once.
	if k, ok := c.byServer.Load(server); ok {
		c.labels.Store(k.(*counters))
		return k.(*counters)
	}
	k, _ := c.byServer.LoadOrStore(server, c.metrics.resolve(server, c.zonesMetricLabel, c.viewMetricLabel))
	c.labels.Store(k.(*counters))
	return k.(*counters)
}

// ServeDNS implements plugin.Handler as CoreDNS's cache: answer from the
// cache when a fresh (or, with serve_stale, a stale) entry exists,
// otherwise ask the next plugin and cache what it writes.
func (c *Cache) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) == 0 {
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
	}
	q := &r.Question[0]
	if plugin.LongestZoneFold(c.Zones, q.Name) == "" {
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
	}
	opt := r.IsEdns0()
	do := opt != nil && opt.Do()
	cd := r.CheckingDisabled
	ad := r.AuthenticatedData
	key := hash(q.Name, q.Qtype, do, cd)
	k := c.counters(ctx)

	// The version is read before the next plugins are asked, so that an
	// answer is never stored under a version newer than its data.
	ver := c.version(q.Name)
	now := c.now().UTC()
	nowNs := now.UnixNano()
	i := c.getIfNotStale(nowNs, key, q, ver, k)
	if i == nil {
		crr := &ResponseWriter{ResponseWriter: w, c: c, k: k, qname: q.Name, qtype: q.Qtype, do: do, cd: cd, ad: ad,
			nexcept: c.nexcept, pexcept: c.pexcept, version: ver}
		return c.doRefresh(ctx, r, crr)
	}
	ttl := i.ttl(nowNs)
	if ttl < 0 {
		// serve_stale
		if c.verifyStale {
			crr := &ResponseWriter{ResponseWriter: w, c: c, k: k, qname: q.Name, qtype: q.Qtype, do: do, cd: cd, version: ver}
			cw := &verifyStaleResponseWriter{ResponseWriter: crr}
			ret, err := c.doRefresh(ctx, r, cw)
			if cw.refreshed {
				return ret, err
			}
		}
		// A reply built from a stale entry has TTL 0.
		now = now.Add(time.Duration(ttl) * time.Second)
		nowNs = now.UnixNano()
		if !c.verifyStale {
			c.startPrefetch(ctx, w, r, key, i, now, ver, k)
		}
		k.servedStale.Inc()
	} else if c.shouldPrefetch(i, now) {
		c.startPrefetch(ctx, w, r, key, i, now, ver, k)
	}

	if c.keepttl {
		nowNs = i.storedNs
	}
	c.writeItem(w, r, i, max(i.ttl(nowNs), 0), do, opt)
	return dns.RcodeSuccess, nil
}

// clientSize is CoreDNS's request.Size: 65535 over TCP, else the EDNS0
// buffer size, at least 512.
func clientSize(w dns.ResponseWriter, opt *dns.OPT) int {
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		return dns.MaxMsgSize
	}
	if opt == nil {
		return dns.MinMsgSize
	}
	return max(int(opt.UDPSize()), dns.MinMsgSize)
}

// writeItem writes the answer to r from i: the stored bytes copied into a
// pooled buffer and patched (see item.reply), then w.Write.
func (c *Cache) writeItem(w dns.ResponseWriter, r *dns.Msg, i *item, ttl int, do bool, opt *dns.OPT) {
	bp := bufPool.Get().(*[]byte)
	b, ok := i.reply(*bp, r, uint32(ttl), do, clientSize(w, opt), opt)
	if ok {
		w.Write(b)
	}
	*bp = b[:0]
	bufPool.Put(bp)
	if !ok {
		// The query's name does not fit the stored bytes (never for a
		// name that matched): build the reply as a message instead.
		if m := i.toMsg(r, uint32(ttl), do); m != nil {
			w.WriteMsg(m)
		}
	}
}

// toMsg is CoreDNS's item.toMsg, the slow path of writeItem.
func (i *item) toMsg(r *dns.Msg, ttl uint32, do bool) *dns.Msg {
	stored := new(dns.Msg)
	if err := stored.Unpack(i.wire); err != nil {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.AuthenticatedData = i.ad && (do || r.AuthenticatedData)
	m.RecursionAvailable = i.ra
	m.Rcode = i.rcode
	m.Answer = filterRRSlice(stored.Answer, ttl)
	m.Ns = filterRRSlice(stored.Ns, ttl)
	m.Extra = filterRRSlice(stored.Extra, ttl)
	return m
}

func (c *Cache) doRefresh(ctx context.Context, r *dns.Msg, cw dns.ResponseWriter) (int, error) {
	return plugin.NextOrFailure(c.Name(), c.Next, ctx, cw, r)
}

// shouldPrefetch: AMOUNT hits without a gap of DURATION, and the TTL at or
// below PERCENTAGE of the original TTL (CoreDNS rounds the threshold up).
func (c *Cache) shouldPrefetch(i *item, now time.Time) bool {
	if c.prefetch <= 0 {
		return false
	}
	i.update(c.duration, now)
	threshold := int(math.Ceil(float64(c.percentage) / 100 * float64(i.origTTL)))
	return i.Hits() >= c.prefetch && i.ttl(now.UnixNano()) <= threshold
}

// startPrefetch refreshes i in the background, writing nothing to the
// client. The refresh asks as if over TCP (so that nothing is truncated)
// and does not hold on to the client's writer, which may be gone by then.
func (c *Cache) startPrefetch(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, key uint64, i *item, now time.Time, ver uint64, k *counters) {
	// The server may reuse its address structs for the next query: copy.
	var addr net.Addr
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		addr = &net.TCPAddr{IP: slices.Clone(a.IP), Port: a.Port, Zone: a.Zone}
	case *net.TCPAddr:
		addr = &net.TCPAddr{IP: slices.Clone(a.IP), Port: a.Port, Zone: a.Zone}
	default:
		addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	var local net.Addr
	switch a := w.LocalAddr().(type) {
	case *net.UDPAddr:
		local = &net.UDPAddr{IP: slices.Clone(a.IP), Port: a.Port, Zone: a.Zone}
	case *net.TCPAddr:
		local = &net.TCPAddr{IP: slices.Clone(a.IP), Port: a.Port, Zone: a.Zone}
	default:
		local = a
	}
	rc := r.Copy()
	q := rc.Question[0]
	opt := rc.IsEdns0()
	cw := &ResponseWriter{ResponseWriter: detachedWriter{local: local, remote: addr}, c: c, k: k,
		qname: q.Name, qtype: q.Qtype, do: opt != nil && opt.Do(), cd: rc.CheckingDisabled,
		prefetch: true, remoteAddr: addr, pexcept: c.pexcept, nexcept: c.nexcept, version: ver}
	ctx = context.WithoutCancel(ctx)
	go c.doPrefetch(ctx, rc, cw, key, i, now)
}

// detachedWriter stands in for the client's writer during a prefetch:
// it knows the addresses and writes nothing.
type detachedWriter struct{ local, remote net.Addr }

func (d detachedWriter) LocalAddr() net.Addr         { return d.local }
func (d detachedWriter) RemoteAddr() net.Addr        { return d.remote }
func (d detachedWriter) WriteMsg(*dns.Msg) error     { return nil }
func (d detachedWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d detachedWriter) Close() error                { return nil }
func (d detachedWriter) TsigStatus() error           { return nil }
func (d detachedWriter) TsigTimersOnly(bool)         {}
func (d detachedWriter) Hijack()                     {}

func (c *Cache) doPrefetch(ctx context.Context, r *dns.Msg, cw *ResponseWriter, key uint64, i *item, now time.Time) {
	cw.k.prefetches.Inc()
	c.doRefresh(ctx, r, cw)
	// Keep the hit frequency gathered so far in the new entry.
	if i1 := c.exists(key, &r.Question[0]); i1 != nil {
		i1.reset(now, i.Hits())
	}
}

// getIfNotStale returns the entry for the query if it is fresh, or stale
// for less than serve_stale's DURATION; the denial cache first. An entry
// stored under another version of its name (ver) is removed and not
// returned, fresh or stale: its data changed, so it is a miss.
func (c *Cache) getIfNotStale(nowNs int64, key uint64, q *dns.Question, ver uint64, k *counters) *item {
	k.requests.Inc()
	if i, ok := c.ncache.Get(key); ok && i.matches(q.Name, q.Qtype) {
		if i.version != ver {
			c.ncache.RemoveItem(key, i)
		} else if ttl := i.ttl(nowNs); ttl > 0 || (c.staleUpTo > 0 && -ttl < int(c.staleUpTo.Seconds())) {
			k.hitsDenial.Inc()
			return i
		}
	}
	if i, ok := c.pcache.Get(key); ok && i.matches(q.Name, q.Qtype) {
		if i.version != ver {
			c.pcache.RemoveItem(key, i)
		} else if ttl := i.ttl(nowNs); ttl > 0 || (c.staleUpTo > 0 && -ttl < int(c.staleUpTo.Seconds())) {
			k.hitsSuccess.Inc()
			return i
		}
	}
	k.misses.Inc()
	return nil
}

// exists returns the entry under key whatever its age.
func (c *Cache) exists(key uint64, q *dns.Question) *item {
	if i, ok := c.ncache.Get(key); ok && i.matches(q.Name, q.Qtype) {
		return i
	}
	if i, ok := c.pcache.Get(key); ok && i.matches(q.Name, q.Qtype) {
		return i
	}
	return nil
}
