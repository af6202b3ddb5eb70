package forward

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/request"
)

const (
	transDNS = "dns"
	transTLS = "tls"

	defaultExpire  = 10 * time.Second
	minDialTimeout = 1 * time.Second
	maxDialTimeout = 30 * time.Second
	maxTimeout     = 2 * time.Second // write deadline and default read timeout
	hcInterval     = 500 * time.Millisecond

	cumulativeAvgWeight = 4
)

var (
	// ErrNoHealthy means no healthy proxies left.
	ErrNoHealthy = errors.New("no healthy proxies")
	// ErrCachedClosed means a cached connection was closed by the peer.
	ErrCachedClosed = errors.New("cached connection was closed by peer")
	// ErrTransportStopped is returned when dialing after OnShutdown.
	ErrTransportStopped = errors.New("proxy: transport stopped")
)

// Options are the per-forward knobs a query is sent with.
type Options struct {
	ForceTCP           bool   // TCP even for UDP clients; wins over PreferUDP
	PreferUDP          bool   // UDP even for TCP clients
	HCRecursionDesired bool   // RD bit of health check queries
	HCDomain           string // name of the health check query (". IN NS")
}

type transportType int

const (
	typeUDP transportType = iota
	typeTCP
	typeTLS
	typeTotalCount
)

var protoNames = [typeTotalCount]string{"udp", "tcp", "tcp-tls"}

func stringToTransportType(s string) transportType {
	switch s {
	case "tcp":
		return typeTCP
	case "tcp-tls":
		return typeTLS
	}
	return typeUDP
}

// persistConn is a pooled upstream connection and when it was last used.
type persistConn struct {
	c    *dns.Conn
	used time.Time
}

// transport is the connection pool of one upstream, as CoreDNS's
// pkg/proxy Transport: per protocol a FIFO of idle connections, each
// reused until it has been idle for expire.
type transport struct {
	avgDialTime  int64
	conns        [typeTotalCount][]*persistConn
	expire       time.Duration
	maxIdleConns int
	addr         string
	tlsConfig    *tls.Config
	proxyName    string
	m            *metrics

	mu       sync.Mutex
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when connManager has returned
	started  atomic.Bool
}

func newTransport(proxyName, addr string, m *metrics) *transport {
	return &transport{
		avgDialTime: int64(maxDialTimeout / 2),
		expire:      defaultExpire,
		addr:        addr,
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		proxyName:   proxyName,
		m:           m,
	}
}

func limitTimeout(currentAvg *int64, minValue, maxValue time.Duration) time.Duration {
	rt := time.Duration(atomic.LoadInt64(currentAvg))
	if rt < minValue {
		return minValue
	}
	if rt < maxValue/2 {
		return 2 * rt
	}
	return maxValue
}

func averageTimeout(currentAvg *int64, observed time.Duration, weight int64) {
	dt := time.Duration(atomic.LoadInt64(currentAvg))
	atomic.AddInt64(currentAvg, int64(observed-dt)/weight)
}

func (t *transport) dialTimeout() time.Duration {
	return limitTimeout(&t.avgDialTime, minDialTimeout, maxDialTimeout)
}

// Dial returns an idle pooled connection (oldest first, so that source
// ports rotate) or a new one; cached tells which.
func (t *transport) Dial(proto string) (pc *persistConn, cached bool, err error) {
	if t.tlsConfig != nil {
		proto = "tcp-tls"
	}
	select {
	case <-t.stop:
		return nil, false, ErrTransportStopped
	default:
	}
	tt := stringToTransportType(proto)

	t.mu.Lock()
	for len(t.conns[tt]) > 0 {
		pc := t.conns[tt][0]
		t.conns[tt][0] = nil
		t.conns[tt] = t.conns[tt][1:]
		if time.Since(pc.used) > t.expire {
			pc.c.Close()
			continue
		}
		t.mu.Unlock()
		t.m.connCacheHits.WithLabelValues(t.proxyName, t.addr, proto).Inc()
		return pc, true, nil
	}
	t.mu.Unlock()
	t.m.connCacheMisses.WithLabelValues(t.proxyName, t.addr, proto).Inc()

	start := time.Now()
	timeout := t.dialTimeout()
	var conn *dns.Conn
	if proto == "tcp-tls" {
		conn, err = dns.DialTimeoutWithTLS("tcp", t.addr, t.tlsConfig, timeout)
	} else {
		conn, err = dns.DialTimeout(proto, t.addr, timeout)
	}
	averageTimeout(&t.avgDialTime, time.Since(start), cumulativeAvgWeight)
	if err != nil {
		return nil, false, err
	}
	return &persistConn{c: conn}, false, nil
}

func (t *transport) typeOf(pc *persistConn) transportType {
	if _, ok := pc.c.Conn.(*net.UDPConn); ok {
		return typeUDP
	}
	if t.tlsConfig == nil {
		return typeTCP
	}
	return typeTLS
}

// Yield returns pc to the pool, or closes it when the pool is stopped or
// full (max_idle_conns).
func (t *transport) Yield(pc *persistConn) {
	select {
	case <-t.stop:
		pc.c.Close()
		return
	default:
	}
	pc.used = time.Now()
	tt := t.typeOf(pc)
	t.mu.Lock()
	if t.maxIdleConns > 0 && len(t.conns[tt]) >= t.maxIdleConns {
		t.mu.Unlock()
		pc.c.Close()
		return
	}
	t.conns[tt] = append(t.conns[tt], pc)
	t.mu.Unlock()
}

// cleanup closes expired connections, or all of them.
func (t *transport) cleanup(all bool) {
	var toClose []*persistConn
	t.mu.Lock()
	stale := time.Now().Add(-t.expire)
	for tt, stack := range t.conns {
		if len(stack) == 0 {
			continue
		}
		if all {
			t.conns[tt] = nil
			toClose = append(toClose, stack...)
			continue
		}
		if stack[0].used.After(stale) {
			continue
		}
		good := sort.Search(len(stack), func(i int) bool { return stack[i].used.After(stale) })
		t.conns[tt] = stack[good:]
		toClose = append(toClose, stack[:good]...)
	}
	t.mu.Unlock()
	for _, pc := range toClose {
		pc.c.Close()
	}
}

func (t *transport) connManager() {
	defer close(t.done)
	ticker := time.NewTicker(defaultExpire)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			t.cleanup(false)
		case <-t.stop:
			t.cleanup(true)
			return
		}
	}
}

// Start runs the expiry of idle connections.
func (t *transport) Start() {
	if t.started.CompareAndSwap(false, true) {
		go t.connManager()
	}
}

// Stop closes every pooled connection and refuses new dials; it waits
// for the expiry goroutine to end.
func (t *transport) Stop() {
	t.stopOnce.Do(func() { close(t.stop) })
	if t.started.Load() {
		<-t.done
	} else {
		t.cleanup(true)
	}
}

// Proxy is one upstream: its address, connection pool and health.
type Proxy struct {
	fails     uint32
	addr      string
	proxyName string

	transport   *transport
	readTimeout time.Duration

	probe  *probe
	health *healthChecker
	m      *metrics
}

// NewProxy returns the upstream at addr ("127.0.0.1:53") reached over
// trans ("dns" or "tls").
func NewProxy(proxyName, addr, trans string, m *metrics) *Proxy {
	if m == nil {
		m = newMetrics(nil)
	}
	p := &Proxy{
		addr:        addr,
		proxyName:   proxyName,
		probe:       newProbe(),
		readTimeout: maxTimeout,
		transport:   newTransport(proxyName, addr, m),
		health:      newHealthChecker(proxyName, trans, true, "."),
		m:           m,
	}
	return p
}

// Addr is the upstream's address as configured.
func (p *Proxy) Addr() string { return p.addr }

// SetTLSConfig makes queries and health checks use DNS over TLS.
func (p *Proxy) SetTLSConfig(cfg *tls.Config) {
	p.transport.tlsConfig = cfg
	p.health.setTLSConfig(cfg)
}

// SetExpire sets how long an idle connection is kept.
func (p *Proxy) SetExpire(d time.Duration) { p.transport.expire = d }

// SetMaxIdleConns caps the idle connections per protocol (0: no cap).
func (p *Proxy) SetMaxIdleConns(n int) { p.transport.maxIdleConns = n }

// Fails is the number of consecutive failed health checks.
func (p *Proxy) Fails() uint32 { return atomic.LoadUint32(&p.fails) }

// Down tells whether the upstream has failed more than maxfails health
// checks in a row; never when maxfails is 0.
func (p *Proxy) Down(maxfails uint32) bool {
	if maxfails == 0 {
		return false
	}
	return atomic.LoadUint32(&p.fails) > maxfails
}

func (p *Proxy) incrementFails() {
	cur := atomic.LoadUint32(&p.fails)
	if cur > cur+1 {
		return // overflow
	}
	atomic.AddUint32(&p.fails, 1)
}

// Healthcheck starts a round of health checks (one at a time) that
// repeats every interval until the upstream answers.
func (p *Proxy) Healthcheck() {
	p.probe.Do(func() error { return p.health.Check(p) })
}

// Start sets the health check interval and runs the pool's expiry.
func (p *Proxy) Start(interval time.Duration) {
	p.probe.Start(interval)
	p.transport.Start()
}

// Stop ends health checking and closes the pool.
func (p *Proxy) Stop() {
	p.probe.Stop()
	p.transport.Stop()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, dns.MaxMsgSize); return &b }}

// randomID is a query ID from the system's CSPRNG.
func randomID() uint16 {
	var b [2]byte
	if _, err := crand.Read(b[:]); err != nil {
		return uint16(time.Now().UnixNano())
	}
	return binary.BigEndian.Uint16(b[:])
}

// Connect sends the query of state to the upstream and waits for the
// answer, as CoreDNS's proxy.Connect: protocol from opts or the client's,
// a fresh random query ID (the client's ID is put back in the answer and
// the query is not modified), answers with another ID dropped, an
// oversized UDP answer turned into an empty truncated one.
func (p *Proxy) Connect(ctx context.Context, state *request.Request, opts Options) (*dns.Msg, error) {
	start := time.Now()
	var proto string
	switch {
	case opts.ForceTCP:
		proto = "tcp"
	case opts.PreferUDP:
		proto = "udp"
	default:
		proto = state.Proto()
	}

	pc, cached, err := p.transport.Dial(proto)
	if err != nil {
		return nil, err
	}
	udpSize := max(state.Size(), dns.MinMsgSize)
	if udpSize > dns.MaxMsgSize {
		udpSize = dns.MaxMsgSize
	}
	pc.c.UDPSize = uint16(udpSize)

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	out, err := state.Req.PackBuffer(buf)
	if err != nil {
		p.transport.Yield(pc)
		return nil, err
	}
	id := randomID()
	binary.BigEndian.PutUint16(out[0:2], id)
	originID := state.Req.Id

	pc.c.SetWriteDeadline(time.Now().Add(maxTimeout))
	if _, err := pc.c.Write(out); err != nil {
		pc.c.Close()
		if err == io.EOF && cached {
			return nil, ErrCachedClosed
		}
		return nil, err
	}

	isUDP := p.transport.typeOf(pc) == typeUDP
	rbuf := buf
	if isUDP {
		rbuf = buf[:udpSize]
	}
	pc.c.SetReadDeadline(time.Now().Add(p.readTimeout))
	var ret *dns.Msg
	for {
		n, err := pc.c.Read(rbuf)
		if err != nil {
			pc.c.Close()
			if err == io.EOF && cached {
				return nil, ErrCachedClosed
			}
			return nil, err
		}
		if n >= 2 && binary.BigEndian.Uint16(rbuf[:2]) != id {
			continue // drop out-of-order (or spoofed) answers
		}
		ret = new(dns.Msg)
		if err := ret.Unpack(rbuf[:n]); err != nil {
			// Only a whole header (12 bytes) with our ID makes an oversized
			// answer: a shorter packet is garbage (its ID field stays 0,
			// which a random ID equals once in 65,536 tries).
			if n >= 12 && ret.Id == id && isUDP && shouldTruncateResponse(err) {
				// An upstream that sends more than the client's buffer (e.g.
				// >512 bytes without EDNS0): answer empty with TC so the
				// client retries over TCP.
				ret = truncateResponse(ret)
				break
			}
			pc.c.Close()
			ret.Id = originID
			return ret, err
		}
		break
	}
	ret.Id = originID
	p.transport.Yield(pc)

	rc, ok := dns.RcodeToString[ret.Rcode]
	if !ok {
		rc = strconv.Itoa(ret.Rcode)
	}
	p.m.requestDuration.WithLabelValues(p.proxyName, p.addr, rc).Observe(time.Since(start).Seconds())
	_ = ctx
	return ret, nil
}

func shouldTruncateResponse(err error) bool {
	var de *dns.Error
	if errors.As(err, &de) && errors.Is(err, dns.ErrBuf) {
		return true
	}
	return strings.Contains(err.Error(), "overflow")
}

func truncateResponse(m *dns.Msg) *dns.Msg {
	m.Answer, m.Ns, m.Extra = nil, nil, nil
	m.Truncated = true
	return m
}
