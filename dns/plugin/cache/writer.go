package cache

import (
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// ResponseWriter caches what the next plugins write, as CoreDNS's
// cache.ResponseWriter, and passes it on to the client (unless it is a
// prefetch).
type ResponseWriter struct {
	dns.ResponseWriter
	c *Cache
	k *counters

	qname string // the query's name as written
	qtype uint16

	do         bool   // the query had DO
	cd         bool   // the query had CD
	ad         bool   // the query had AD
	prefetch   bool   // write nothing to the client
	version    uint64 // the name's version read before the next plugins were asked
	remoteAddr net.Addr

	pexcept []string
	nexcept []string
}

// RemoteAddr implements dns.ResponseWriter.
func (w *ResponseWriter) RemoteAddr() net.Addr {
	if w.remoteAddr != nil {
		return w.remoteAddr
	}
	return w.ResponseWriter.RemoteAddr()
}

// WriteMsg caches res when it may be (not truncated, not an error other
// than SERVFAIL/NOTIMP, not a transfer or update, an answer to the query's
// question) with every TTL set to the capped minimum TTL, and writes that
// same capped message to the client.
func (w *ResponseWriter) WriteMsg(res *dns.Msg) error {
	now := w.c.now().UTC()
	res = res.Copy()
	mt := typify(res, now)

	hasKey := !res.Truncated && len(res.Question) > 0 &&
		mt != typeOtherError && mt != typeMeta && mt != typeUpdate
	var key uint64
	if hasKey {
		key = hash(w.qname, res.Question[0].Qtype, w.do, w.cd)
	}

	msgTTL := minimalTTL(res, mt)
	var duration time.Duration
	switch mt {
	case typeNameError, typeNoData:
		duration = computeTTL(msgTTL, w.c.minnttl, w.c.nttl)
	case typeServerError:
		duration = w.c.failttl
	default:
		duration = computeTTL(msgTTL, w.c.minpttl, w.c.pttl)
	}

	// Every record gets the capped TTL, so that the client does not see
	// 1799 now and 8 from the cache later.
	ttl := uint32(duration.Seconds())
	res.Answer = filterRRSlice(res.Answer, ttl)
	res.Ns = filterRRSlice(res.Ns, ttl)
	res.Extra = filterRRSlice(res.Extra, ttl)

	if !w.do && !w.ad {
		// No DNSSEC wanted: no AD bit (RFC 6840 5.7-5.8 keeps it when the
		// query set AD).
		res.AuthenticatedData = false
	}

	if hasKey && duration > 0 {
		if w.matches(res) {
			w.set(res, key, mt, duration, now)
			w.k.sizeSuccess.Set(float64(w.c.pcache.Len()))
			w.k.sizeDenial.Set(float64(w.c.ncache.Len()))
		} else {
			w.k.drops.Inc()
		}
	}

	if w.prefetch {
		return nil
	}
	return w.ResponseWriter.WriteMsg(res)
}

// matches is CoreDNS's request.Match.
func (w *ResponseWriter) matches(res *dns.Msg) bool {
	return len(res.Question) == 1 && res.Response &&
		strings.EqualFold(res.Question[0].Name, w.qname) && res.Question[0].Qtype == w.qtype
}

func (w *ResponseWriter) set(m *dns.Msg, key uint64, mt responseType, duration time.Duration, now time.Time) {
	switch mt {
	case typeNoError, typeDelegation:
		if plugin.LongestZoneFold(w.pexcept, m.Question[0].Name) != "" {
			return
		}
		i := newItem(m, now, duration)
		if i == nil {
			return
		}
		i.version = w.version
		if w.c.pcache.Add(key, i) {
			w.k.evSuccess.Inc()
		}
		if w.prefetch {
			w.c.ncache.Remove(key)
		}
	case typeNameError, typeNoData, typeServerError:
		if plugin.LongestZoneFold(w.nexcept, m.Question[0].Name) != "" {
			return
		}
		i := newItem(m, now, duration)
		if i == nil {
			return
		}
		i.version = w.version
		if w.c.ncache.Add(key, i) {
			w.k.evDenial.Inc()
		}
	}
}

// Write caches raw answers too (CoreDNS only logs a warning and passes
// them on): a plugin after the cache that writes packed bytes is unpacked
// and handled as WriteMsg. Bytes that do not unpack are passed on as they
// are.
func (w *ResponseWriter) Write(buf []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		if w.prefetch {
			return len(buf), nil
		}
		return w.ResponseWriter.Write(buf)
	}
	return len(buf), w.WriteMsg(m)
}

func computeTTL(msgTTL, minTTL, maxTTL time.Duration) time.Duration {
	return min(max(msgTTL, minTTL), maxTTL)
}

// filterRRSlice drops OPT records and sets every TTL to ttl, in place
// (the records are copies).
func filterRRSlice(rrs []dns.RR, ttl uint32) []dns.RR {
	j := 0
	for _, r := range rrs {
		if r.Header().Rrtype == dns.TypeOPT {
			continue
		}
		r.Header().Ttl = ttl
		rrs[j] = r
		j++
	}
	return rrs[:j]
}

// verifyStaleResponseWriter passes on (and caches) only answers that
// refresh a stale entry per RFC 8767 section 4: NOERROR or NXDOMAIN.
type verifyStaleResponseWriter struct {
	*ResponseWriter
	refreshed bool
}

// WriteMsg implements dns.ResponseWriter.
func (w *verifyStaleResponseWriter) WriteMsg(res *dns.Msg) error {
	w.refreshed = false
	if res.Rcode == dns.RcodeSuccess || res.Rcode == dns.RcodeNameError {
		w.refreshed = true
		return w.ResponseWriter.WriteMsg(res)
	}
	return nil
}

// Write implements dns.ResponseWriter.
func (w *verifyStaleResponseWriter) Write(buf []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return len(buf), nil
	}
	return len(buf), w.WriteMsg(m)
}
