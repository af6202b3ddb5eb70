package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/dns/request"
)

// UDPSockets is how many UDP sockets (SO_REUSEPORT, so the kernel spreads
// queries over them) each listen address gets; read at listen time.
var UDPSockets = defaultUDPSockets()

func defaultUDPSockets() int {
	n := runtime.GOMAXPROCS(0)
	if n > 4 {
		n = 4
	}
	return n
}

// TCP timeouts, as CoreDNS's defaults.
const (
	tcpReadTimeout  = 3 * time.Second
	tcpWriteTimeout = 5 * time.Second
	tcpIdleTimeout  = 10 * time.Second
)

// listenerSet is the sockets of one listen address: UDP (one or more
// SO_REUSEPORT sockets) and TCP. It answers from whichever Server it
// points to; a reload points it at the new instance's server, so the
// sockets, and the queries queued on them, survive the reload.
type listenerSet struct {
	key    string // the listen address (canonical host:port); "" when not shared
	udp    []*udpConn
	tcp    net.Listener
	tcpSrv *dns.Server
	disp   atomic.Pointer[Server]
	refs   int // instances using it; guarded by pool
	wg     sync.WaitGroup
}

// pool holds the listener sets of every running instance of the process
// by listen address, so that a new instance takes over the sockets of the
// one it replaces.
var pool = struct {
	sync.Mutex
	m map[string]*listenerSet
}{m: map[string]*listenerSet{}}

func portZero(listen string) bool { return strings.HasSuffix(listen, ":0") }

// acquire gets the sockets for servers: the ones of a running instance
// for the same address, or new ones. Nothing changes unless every address
// could be had.
func acquire(servers []*Server) ([]*listenerSet, error) {
	pool.Lock()
	defer pool.Unlock()
	type pick struct {
		s     *Server
		set   *listenerSet
		fresh bool
	}
	var picks []pick
	for _, s := range servers {
		if !portZero(s.listen) {
			if set, ok := pool.m[s.listen]; ok {
				picks = append(picks, pick{s: s, set: set})
				continue
			}
		}
		set, err := bind(s.listen)
		if err != nil {
			for _, p := range picks {
				if p.fresh {
					p.set.close()
				}
			}
			return nil, fmt.Errorf("listen %s: %w", s.Addr, err)
		}
		picks = append(picks, pick{s: s, set: set, fresh: true})
	}
	sets := make([]*listenerSet, 0, len(picks))
	for _, p := range picks {
		p.set.disp.Store(p.s)
		p.set.refs++
		p.s.set = p.set
		if p.fresh {
			if !portZero(p.s.listen) {
				p.set.key = p.s.listen
				pool.m[p.set.key] = p.set
			}
			p.set.serve()
		}
		sets = append(sets, p.set)
	}
	return sets, nil
}

// release gives sets back; the ones no instance uses any more close.
func release(sets []*listenerSet) {
	var closing []*listenerSet
	pool.Lock()
	for _, set := range sets {
		set.refs--
		if set.refs > 0 {
			continue
		}
		if set.key != "" && pool.m[set.key] == set {
			delete(pool.m, set.key)
		}
		closing = append(closing, set)
	}
	pool.Unlock()
	for _, set := range closing {
		set.close()
	}
}

// enter returns the server to answer with and counts the query as in
// flight in its instance; leave must follow.
func (l *listenerSet) enter() *Server {
	for {
		s := l.disp.Load()
		s.inst.inflight.Add(1)
		if l.disp.Load() == s {
			return s
		}
		s.inst.inflight.Add(-1) // swapped meanwhile: use the new one
	}
}

func leave(s *Server) { s.inst.inflight.Add(-1) }

// bind opens the sockets of listen ("host:port", host "" for all
// addresses). With port 0 the kernel picks one port for both UDP and TCP.
func bind(listen string) (*listenerSet, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, err
	}
	n := UDPSockets
	if n < 1 {
		n = 1
	}
	if port != "0" {
		return bindPort(host, port, n)
	}
	var lastErr error
	for range 10 {
		tl, err := listenTCP(net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		p := fmt.Sprint(tl.Addr().(*net.TCPAddr).Port)
		set, err := bindUDP(host, p, n)
		if err != nil {
			tl.Close()
			lastErr = err
			continue // the UDP port is taken: try another
		}
		set.tcp = tl
		return set, nil
	}
	return nil, lastErr
}

func bindPort(host, port string, n int) (*listenerSet, error) {
	set, err := bindUDP(host, port, n)
	if err != nil {
		return nil, err
	}
	tl, err := listenTCP(net.JoinHostPort(host, port))
	if err != nil {
		set.close()
		return nil, err
	}
	set.tcp = tl
	return set, nil
}

func bindUDP(host, port string, n int) (*listenerSet, error) {
	set := &listenerSet{}
	wildcard := host == ""
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		wildcard = true
	}
	for range n {
		pc, err := listenUDP(net.JoinHostPort(host, port), wildcard)
		if err != nil {
			set.close()
			return nil, err
		}
		u := &udpConn{set: set, conn: pc, pktinfo: wildcard, port: pc.LocalAddr().(*net.UDPAddr).Port}
		set.udp = append(set.udp, u)
	}
	return set, nil
}

func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

func listenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: reusePort}
	return lc.Listen(context.Background(), "tcp", addr)
}

func listenUDP(addr string, pktinfo bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		if err := reusePort(network, address, c); err != nil {
			return err
		}
		if !pktinfo {
			return nil
		}
		// A socket on all addresses must answer from the address the
		// query came to: ask for it with every datagram.
		return c.Control(func(fd uintptr) {
			if strings.HasSuffix(network, "6") {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			}
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		})
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	u := pc.(*net.UDPConn)
	// Bursts of queries (a pod starting, a dnsperf run) outpace the
	// readers for a moment; the default buffer (rmem_default, 208 KiB)
	// then drops datagrams. Ask for more; the kernel caps it at rmem_max.
	_ = u.SetReadBuffer(udpReadBuffer)
	return u, nil
}

// udpReadBuffer is the receive buffer asked for each UDP socket.
const udpReadBuffer = 4 << 20

// serve starts the readers of every socket.
func (l *listenerSet) serve() {
	for _, u := range l.udp {
		u.spawn()
	}
	if l.tcp != nil {
		started := make(chan struct{})
		l.tcpSrv = &dns.Server{
			Listener:          l.tcp,
			Net:               "tcp",
			Handler:           tcpHandler{l},
			ReadTimeout:       tcpReadTimeout,
			WriteTimeout:      tcpWriteTimeout,
			IdleTimeout:       func() time.Duration { return tcpIdleTimeout },
			MaxTCPQueries:     -1,
			NotifyStartedFunc: func() { close(started) },
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = l.tcpSrv.ActivateAndServe()
		}()
		<-started
	}
}

// close closes every socket and waits for the readers.
func (l *listenerSet) close() {
	for _, u := range l.udp {
		u.closed.Store(true)
		u.conn.Close()
	}
	if l.tcpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = l.tcpSrv.ShutdownContext(ctx)
		cancel()
	} else if l.tcp != nil {
		l.tcp.Close()
	}
	l.wg.Wait()
}

type tcpHandler struct{ set *listenerSet }

func (h tcpHandler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s := h.set.enter()
	defer leave(s)
	s.ServeDNS(s.ctx, w, r)
}

// udpConn is one UDP socket and its readers. Readers follow the
// leader/follower pattern: a reader that takes a datagram starts another
// reader only when none is left waiting, then answers the query itself,
// so a fast chain costs no goroutine per query and a slow one (forward
// waiting on an upstream) never blocks the socket.
type udpConn struct {
	set     *listenerSet
	conn    *net.UDPConn
	pktinfo bool // answer from the address each query came to
	port    int
	idle    atomic.Int32 // readers waiting in ReadMsgUDP
	closed  atomic.Bool
}

// maxIdleReaders bounds the readers kept waiting on one socket.
const maxIdleReaders = 4

func (u *udpConn) spawn() {
	u.set.wg.Add(1)
	go u.read()
}

// maxUDPQuery is the largest UDP query read. Queries are a question and
// perhaps an OPT record (EDNS0 sizes top out at 4096 in practice), so 4 KiB
// is ample, and every reader goroutine holds one such buffer: under
// forwarding load there is one reader per outstanding query, and 64 KiB
// each added tens of megabytes. A larger datagram arrives truncated
// (MSG_TRUNC) and is dropped, as a server that cannot read it.
const maxUDPQuery = 4096

var writerPool = sync.Pool{New: func() any {
	return &udpWriter{
		in:  make([]byte, maxUDPQuery),
		oob: make([]byte, 128),
		out: make([]byte, 0, 4096),
		so:  make([]byte, 64),
	}
}}

func (u *udpConn) read() {
	defer u.set.wg.Done()
	w := writerPool.Get().(*udpWriter)
	w.c = u
	defer func() {
		w.c, w.req = nil, nil
		writerPool.Put(w)
	}()
	errs := 0
	for {
		u.idle.Add(1)
		n, oobn, flags, raddr, err := u.conn.ReadMsgUDPAddrPort(w.in, w.oob)
		if u.idle.Add(-1) == 0 && err == nil {
			u.spawn()
		}
		if err != nil {
			if u.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			errs++
			if errs > 10 {
				time.Sleep(10 * time.Millisecond) // never spin on a failing socket
			}
			continue
		}
		errs = 0
		if flags&msgTrunc != 0 {
			continue // larger than maxUDPQuery: unreadable
		}
		w.reset(raddr, w.oob[:oobn])
		s := u.set.enter()
		s.ServePacket(w, w.in[:n])
		leave(s)
		if u.idle.Load() >= maxIdleReaders {
			return
		}
	}
}

// udpWriter answers one UDP query at a time; a reader reuses it for the
// queries it takes, so a ResponseWriter is valid only during ServeDNS (as
// an http.ResponseWriter).
type udpWriter struct {
	c       *udpConn
	in      []byte // the datagram read
	oob     []byte // its control messages
	out     []byte // pack buffer
	so      []byte // control message of the answer (source address)
	sendOOB []byte
	raddr   netip.AddrPort
	dst     netip.Addr // the address the query came to (pktinfo)
	remote  net.UDPAddr
	rip     [16]byte
	local   net.UDPAddr
	lip     [16]byte
	req     *dns.Msg // the query, to scrub the answer; nil: write as is
}

func (w *udpWriter) reset(raddr netip.AddrPort, oob []byte) {
	w.req = nil
	w.raddr = raddr
	a := raddr.Addr().Unmap()
	if a.Is4() {
		b := a.As4()
		copy(w.rip[:], b[:])
		w.remote.IP = w.rip[:4]
	} else {
		b := a.As16()
		copy(w.rip[:], b[:])
		w.remote.IP = w.rip[:16]
	}
	w.remote.Port = int(raddr.Port())
	w.remote.Zone = a.Zone()
	w.dst = netip.Addr{}
	w.sendOOB = nil
	if w.c.pktinfo {
		if d, ok := parseDst(oob); ok {
			w.dst = d.Unmap()
			w.sendOOB = srcOOB(w.so, w.dst)
		}
	}
}

// parseDst finds the destination address in IP_PKTINFO / IPV6_PKTINFO.
func parseDst(oob []byte) (netip.Addr, bool) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		data := oob[hdr:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(pi.Addr), true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom16(pi.Addr), true
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return netip.Addr{}, false
}

// srcOOB builds the control message that makes an answer leave from src.
func srcOOB(buf []byte, src netip.Addr) []byte {
	if src.Is4() {
		n := unix.CmsgSpace(unix.SizeofInet4Pktinfo)
		b := buf[:n]
		clear(b)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
		pi.Spec_dst = src.As4()
		return b
	}
	n := unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	b := buf[:n]
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	pi.Addr = src.As16()
	return b
}

// WriteMsg scrubs m to fit the client (when the server asked for it),
// packs it and sends it.
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	if w.req != nil {
		state := request.Request{Req: w.req, W: w}
		state.SizeAndDo(m)
		state.Scrub(m)
	}
	data, err := m.PackBuffer(w.out[:cap(w.out)])
	if err != nil {
		return err
	}
	if cap(data) > cap(w.out) && cap(data) <= dns.MaxMsgSize {
		w.out = data[:0]
	}
	_, err = w.Write(data)
	return err
}

// Write sends b as the answer.
func (w *udpWriter) Write(b []byte) (int, error) {
	n, _, err := w.c.conn.WriteMsgUDPAddrPort(b, w.sendOOB, w.raddr)
	return n, err
}

// RemoteAddr is the client's address (a *net.UDPAddr reused per query).
func (w *udpWriter) RemoteAddr() net.Addr { return &w.remote }

// LocalAddr is the address the query came to.
func (w *udpWriter) LocalAddr() net.Addr {
	if w.dst.IsValid() {
		if w.dst.Is4() {
			b := w.dst.As4()
			copy(w.lip[:], b[:])
			w.local.IP = w.lip[:4]
		} else {
			b := w.dst.As16()
			copy(w.lip[:], b[:])
			w.local.IP = w.lip[:16]
		}
		w.local.Port = w.c.port
		return &w.local
	}
	return w.c.conn.LocalAddr()
}

// Close, TsigStatus, TsigTimersOnly, Hijack and Network complete
// dns.ResponseWriter.
func (w *udpWriter) Close() error        { return nil }
func (w *udpWriter) TsigStatus() error   { return nil }
func (w *udpWriter) TsigTimersOnly(bool) {}
func (w *udpWriter) Hijack()             {}
func (w *udpWriter) Network() string     { return "udp" }

var _ dns.ResponseWriter = (*udpWriter)(nil)

// msgTrunc is the recvmsg flag of a datagram larger than the buffer.
const msgTrunc = unix.MSG_TRUNC
