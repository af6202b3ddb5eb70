package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// A Relay publishes a port of a network namespace on a socket of the
// namespace the caller runs in (the host's, for `up --network netns`), the
// way `docker run -p 127.0.0.1:8080:80` publishes a container's port, but
// without a single rule in the host's namespace: the host socket is an
// ordinary listener, and every connection (or UDP client) gets a socket of
// its own created on a thread inside the target namespace (InNetNS), to
// which the bytes are copied.
//
// The relay never touches either namespace's routes or rules; closing it
// closes every socket it opened.
type Relay struct {
	network string // "tcp" or "udp"
	ln      net.Listener
	pc      *net.UDPConn
	log     *slog.Logger

	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{}
	wg     sync.WaitGroup
}

// udpIdle is how long a UDP client's session lives without traffic (DNS
// clients ask and get an answer within seconds).
const udpIdle = 30 * time.Second

// maxUDPSessions bounds the UDP clients relayed at once; further clients'
// datagrams are dropped until a session ends.
const maxUDPSessions = 1024

// ListenRelay binds addr ("tcp" or "udp", port 0 picks a free port) in the
// caller's namespace. Serve starts relaying.
func ListenRelay(network, addr string, log *slog.Logger) (*Relay, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Relay{network: network, log: log, conns: map[io.Closer]struct{}{}}
	switch network {
	case "tcp", "tcp4", "tcp6":
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		r.ln = l
	case "udp", "udp4", "udp6":
		ua, err := net.ResolveUDPAddr(network, addr)
		if err != nil {
			return nil, err
		}
		c, err := net.ListenUDP(network, ua)
		if err != nil {
			return nil, err
		}
		r.pc = c
	default:
		return nil, fmt.Errorf("relay %s: network %q: want tcp or udp", addr, network)
	}
	return r, nil
}

// Addr is the bound host address.
func (r *Relay) Addr() net.Addr {
	if r.ln != nil {
		return r.ln.Addr()
	}
	return r.pc.LocalAddr()
}

// Close stops the relay and closes every connection it relays; Serve
// returns.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	var err error
	if r.ln != nil {
		err = r.ln.Close()
	} else {
		err = r.pc.Close()
	}
	r.wg.Wait()
	return err
}

// track registers c to be closed by Close; false when already closed.
func (r *Relay) track(c io.Closer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c io.Closer) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	_ = c.Close()
}

// DialInNetNS connects to addr from a socket created inside the network
// namespace at path (the socket stays there whatever thread uses it
// later).
func DialInNetNS(ctx context.Context, path, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNetNS(path, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Serve relays until Close (or ctx is done) to target, an address inside
// the network namespace at netnsPath. It returns nil once closed.
func (r *Relay) Serve(ctx context.Context, netnsPath, target string) error {
	stop := context.AfterFunc(ctx, func() { _ = r.Close() })
	defer stop()
	if r.ln != nil {
		return r.serveTCP(ctx, netnsPath, target)
	}
	return r.serveUDP(ctx, netnsPath, target)
}

func (r *Relay) serveTCP(ctx context.Context, netnsPath, target string) error {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			r.mu.Lock()
			closed := r.closed
			r.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if !r.track(c) {
			c.Close()
			return nil
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.untrack(c)
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			up, err := DialInNetNS(dctx, netnsPath, "tcp", target)
			cancel()
			if err != nil {
				r.log.Debug("relay: dial in namespace", "netns", netnsPath, "target", target, "client", c.RemoteAddr(), "err", err)
				return
			}
			if !r.track(up) {
				up.Close()
				return
			}
			defer r.untrack(up)
			Pipe(c, up)
		}()
	}
}

// Pipe copies both ways between two connections, passing on half-closes,
// until both directions end (closing either connection ends both).
func Pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}

// udpSession is one UDP client's socket inside the namespace.
type udpSession struct {
	c    *net.UDPConn
	last time.Time
}

func (r *Relay) serveUDP(ctx context.Context, netnsPath, target string) error {
	var smu sync.Mutex
	sessions := map[netip.AddrPort]*udpSession{}
	buf := make([]byte, 64<<10)
	for {
		n, client, err := r.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			r.mu.Lock()
			closed := r.closed
			r.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		smu.Lock()
		s := sessions[client]
		if s == nil && len(sessions) < maxUDPSessions {
			c, err := DialInNetNS(ctx, netnsPath, "udp", target)
			if err != nil {
				smu.Unlock()
				r.log.Debug("relay: dial in namespace", "netns", netnsPath, "target", target, "err", err)
				continue
			}
			uc := c.(*net.UDPConn)
			if !r.track(uc) {
				smu.Unlock()
				uc.Close()
				return nil
			}
			s = &udpSession{c: uc}
			sessions[client] = s
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer func() {
					smu.Lock()
					delete(sessions, client)
					smu.Unlock()
					r.untrack(uc)
				}()
				rb := make([]byte, 64<<10)
				for {
					_ = uc.SetReadDeadline(time.Now().Add(udpIdle))
					m, err := uc.Read(rb)
					if err != nil {
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							smu.Lock()
							idle := time.Since(s.last) >= udpIdle
							smu.Unlock()
							if !idle {
								continue
							}
						}
						return
					}
					_, _ = r.pc.WriteToUDPAddrPort(rb[:m], client)
				}
			}()
		}
		if s != nil {
			s.last = time.Now()
		}
		smu.Unlock()
		if s != nil {
			_, _ = s.c.Write(buf[:n])
		}
	}
}
