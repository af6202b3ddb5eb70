package prometheus

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// Metrics is the prometheus handler: it counts every query that passes
// it, per server, zone, protocol, family and type, as CoreDNS's metrics
// plugin.
type Metrics struct {
	Next plugin.Handler
	Addr string // where /metrics is served

	zones   []string // the server block's zones
	v       *vars
	next    string // the "plugin" label of answers written below us
	bound   net.Addr
	release func()

	stats sync.Map // *dnsserver.Server (or its name) -> *serverStats
}

// Name implements plugin.Handler.
func (m *Metrics) Name() string { return "prometheus" }

// ListenAddr is the address /metrics is served on (the port the kernel
// picked for port 0), nil before the instance starts.
func (m *Metrics) ListenAddr() net.Addr { return m.bound }

// recorder notes what the chain below wrote; pooled, valid during one
// ServeDNS.
type recorder struct {
	dns.ResponseWriter
	rcode int
	size  int
	wrote bool
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (r *recorder) WriteMsg(m *dns.Msg) error {
	r.rcode = m.Rcode
	r.size += m.Len()
	r.wrote = true
	return r.ResponseWriter.WriteMsg(m)
}

func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	if err == nil {
		r.size += n
		if !r.wrote && len(b) >= 4 {
			r.rcode = int(b[3] & 0xf)
		}
		r.wrote = true
	}
	return n, err
}

// ServeDNS implements plugin.Handler.
func (m *Metrics) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	start := time.Now()
	reqSize := r.Len()
	var qname string
	var qtype uint16
	if len(r.Question) > 0 {
		qname, qtype = r.Question[0].Name, r.Question[0].Qtype
	}
	zi := m.match(qname)
	do := false
	if o := r.IsEdns0(); o != nil {
		do = o.Do()
	}

	rw := recorders.Get().(*recorder)
	*rw = recorder{ResponseWriter: w}
	status, err := plugin.NextOrFailure(m.Name(), m.Next, ctx, rw, r)
	rc, size, wrote := rw.rcode, rw.size, rw.wrote
	rw.ResponseWriter = nil
	recorders.Put(rw)
	if !plugin.ClientWrite(status) {
		rc = status
	}

	zs := m.zoneStats(ctx, zi)
	proto, family := transport(w)
	if do {
		zs.doCounter().Inc()
	}
	zs.requestCounter(proto, family, typeIndex(qtype)).Inc()
	zs.duration.Observe(time.Since(start).Seconds())
	zs.sizes(proto).response.Observe(float64(size))
	zs.sizes(proto).request.Observe(float64(reqSize))
	// CoreDNS labels the answer with the plugin that follows this one
	// (the writer it wraps records its name), "" when nothing wrote.
	pl := 0
	if wrote {
		pl = 1
	}
	zs.responseCounter(rc, pl).Inc()
	return status, err
}

// match returns the index of the longest zone qname is in, len(zones)
// for "." when none.
func (m *Metrics) match(qname string) int {
	best, bi := -1, len(m.zones)
	for i, z := range m.zones {
		if len(z) > best && plugin.IsSubDomain(z, qname) {
			best, bi = len(z), i
		}
	}
	return bi
}

func transport(w dns.ResponseWriter) (proto, family int) {
	switch a := w.RemoteAddr().(type) {
	case *net.TCPAddr:
		proto = 1
		if a.IP.To4() == nil {
			family = 1
		}
	case *net.UDPAddr:
		if a.IP.To4() == nil {
			family = 1
		}
	}
	return proto, family
}

var protoNames = [2]string{"udp", "tcp"}
var familyNames = [2]string{"1", "2"}

// monitorTypes are the types CoreDNS labels by name; every other is
// "other".
var monitorTypes = []uint16{
	dns.TypeAAAA, dns.TypeA, dns.TypeCNAME, dns.TypeDNSKEY, dns.TypeDS, dns.TypeMX,
	dns.TypeNSEC3, dns.TypeNSEC, dns.TypeNS, dns.TypePTR, dns.TypeRRSIG, dns.TypeSOA,
	dns.TypeSRV, dns.TypeTXT, dns.TypeHTTPS, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY,
}

const numTypes = 19 // monitorTypes and "other"

var typeIndexes = func() map[uint16]int {
	m := map[uint16]int{}
	for i, t := range monitorTypes {
		m[t] = i
	}
	return m
}()

func typeIndex(t uint16) int {
	switch t { // the common ones without a map lookup
	case dns.TypeA:
		return 1
	case dns.TypeAAAA:
		return 0
	}
	if i, ok := typeIndexes[t]; ok {
		return i
	}
	return numTypes - 1
}

func typeName(i int) string {
	if i < len(monitorTypes) {
		return dns.TypeToString[monitorTypes[i]]
	}
	return "other"
}

// rcodeName is CoreDNS's rcode.ToString.
func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}

// serverStats are the label children of one server, per zone.
type serverStats struct {
	zones []*zoneStats // by zone index; the last is "."
}

// zoneStats holds the label children of one (server, zone), made when
// first used, so a query costs no label lookup.
type zoneStats struct {
	v            *vars
	server, zone string
	next         string
	duration     prom.Observer
	requests     [2][2][numTypes]atomic.Pointer[counter]
	sizeOf       [2]atomic.Pointer[sizes]
	dos          atomic.Pointer[counter]
	responses    [24][2]atomic.Pointer[counter]
}

type counter struct{ prom.Counter }

type sizes struct{ request, response prom.Observer }

func (m *Metrics) zoneStats(ctx context.Context, zi int) *zoneStats {
	var key any = dnsserver.FromContext(ctx)
	if key == (*dnsserver.Server)(nil) {
		key = dnsserver.ServerName(ctx) // "" outside a server (tests)
	}
	if s, ok := m.stats.Load(key); ok {
		return s.(*serverStats).zones[zi]
	}
	server := dnsserver.ServerName(ctx)
	ss := &serverStats{}
	for i := 0; i <= len(m.zones); i++ {
		zone := "."
		if i < len(m.zones) {
			zone = m.zones[i]
		}
		ss.zones = append(ss.zones, &zoneStats{v: m.v, server: server, zone: zone, next: m.next})
	}
	for _, z := range ss.zones {
		z.duration = m.v.duration.WithLabelValues(server, z.zone, "")
	}
	s, _ := m.stats.LoadOrStore(key, ss)
	return s.(*serverStats).zones[zi]
}

func (z *zoneStats) requestCounter(proto, family, ti int) prom.Counter {
	p := &z.requests[proto][family][ti]
	if c := p.Load(); c != nil {
		return c.Counter
	}
	c := &counter{z.v.requests.WithLabelValues(z.server, z.zone, "", protoNames[proto], familyNames[family], typeName(ti))}
	p.CompareAndSwap(nil, c)
	return c.Counter
}

func (z *zoneStats) sizes(proto int) *sizes {
	p := &z.sizeOf[proto]
	if s := p.Load(); s != nil {
		return s
	}
	s := &sizes{
		request:  z.v.requestSize.WithLabelValues(z.server, z.zone, "", protoNames[proto]),
		response: z.v.responseSize.WithLabelValues(z.server, z.zone, "", protoNames[proto]),
	}
	p.CompareAndSwap(nil, s)
	return s
}

func (z *zoneStats) doCounter() prom.Counter {
	if c := z.dos.Load(); c != nil {
		return c.Counter
	}
	c := &counter{z.v.do.WithLabelValues(z.server, z.zone, "")}
	z.dos.CompareAndSwap(nil, c)
	return c.Counter
}

func (z *zoneStats) responseCounter(rc, pl int) prom.Counter {
	name := ""
	if pl == 1 {
		name = z.next
	}
	if rc < 0 || rc >= len(z.responses) {
		return z.v.responses.WithLabelValues(z.server, z.zone, "", rcodeName(rc), name)
	}
	p := &z.responses[rc][pl]
	if c := p.Load(); c != nil {
		return c.Counter
	}
	c := &counter{z.v.responses.WithLabelValues(z.server, z.zone, "", rcodeName(rc), name)}
	p.CompareAndSwap(nil, c)
	return c.Counter
}

// monitor reports what the server answers by itself, under the zone
// "dropped" as CoreDNS, and the panics it recovers.
type monitor struct{ v *vars }

// Dropped implements dnsserver.Monitor.
func (mo monitor) Dropped(server string, state *request.Request, rc int, size int, start time.Time) {
	const zone = "dropped"
	v := mo.v
	proto := state.Proto()
	fam := "1"
	if state.Family() == 2 {
		fam = "2"
	}
	if state.Do() {
		v.do.WithLabelValues(server, zone, "").Inc()
	}
	v.requests.WithLabelValues(server, zone, "", proto, fam, typeName(typeIndex(state.QType()))).Inc()
	v.duration.WithLabelValues(server, zone, "").Observe(time.Since(start).Seconds())
	v.responseSize.WithLabelValues(server, zone, "", proto).Observe(float64(size))
	v.requestSize.WithLabelValues(server, zone, "", proto).Observe(float64(state.Len()))
	v.responses.WithLabelValues(server, zone, "", rcodeName(rc), "").Inc()
}

// Panic implements dnsserver.Monitor.
func (mo monitor) Panic() { mo.v.panics.Inc() }
