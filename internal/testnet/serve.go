package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// ClientIPRequest is the UDP payload (and "/clientip" the HTTP path) to
// which the servers answer with the source address they see ("ip:port"),
// instead of the host's name: what source-IP-preservation tests need.
const ClientIPRequest = "clientip"

// listen creates a socket inside h's namespace.
func (h *Host) listen(t TB, network string, port int) (net.Listener, net.PacketConn) {
	t.Helper()
	if port < 0 || port > 65535 {
		t.Fatalf("testnet: %s port %d on %s: out of range", network, port, h.Name)
	}
	var ln net.Listener
	var pc net.PacketConn
	addr := ":" + strconv.Itoa(port)
	err := h.Do(func() error {
		var err error
		if network == "udp" {
			pc, err = net.ListenPacket("udp4", addr)
		} else {
			ln, err = net.Listen("tcp", addr)
		}
		return err
	})
	if err != nil {
		t.Fatalf("testnet: listen %s %s in %s: %v", network, addr, h.NetNS, err)
	}
	return ln, pc
}

// ServeTCP serves TCP on port (all addresses) in h's namespace until the
// test ends: each connection first gets "NAME\n" (h.Name), then an echo of
// whatever it sends.
func (h *Host) ServeTCP(t TB, port int) {
	t.Helper()
	ln, _ := h.listen(t, "tcp", port)
	var (
		mu     sync.Mutex
		conns  = map[net.Conn]bool{}
		closed bool
		wg     sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			conns[c] = true
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				if _, err := io.WriteString(c, h.Name+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

// ServeUDP serves UDP (IPv4) on port in h's namespace until the test
// ends, answering each datagram with h.Name (or, for ClientIPRequest,
// with the sender's "ip:port"). Answers leave from the address the
// datagram was sent to (IP_PKTINFO), as a connected client expects.
func (h *Host) ServeUDP(t TB, port int) {
	t.Helper()
	_, pc := h.listen(t, "udp", port)
	p := ipv4.NewPacketConn(pc)
	if err := p.SetControlMessage(ipv4.FlagDst, true); err != nil {
		pc.Close()
		t.Fatalf("testnet: udp port %d in %s: IP_PKTINFO: %v", port, h.NetNS, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, cm, from, err := p.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			answer := h.Name
			if strings.TrimSpace(string(buf[:n])) == ClientIPRequest {
				answer = from.String()
			}
			var reply *ipv4.ControlMessage
			if cm != nil && cm.Dst != nil {
				reply = &ipv4.ControlMessage{Src: cm.Dst}
			}
			_, _ = p.WriteTo([]byte(answer), reply, from)
		}
	}()
}

// ServeHTTP serves HTTP on port in h's namespace until the test ends:
// "/clientip" answers the source "ip:port" the server sees, any other path
// answers h.Name. Responses carry the header "X-Host: NAME".
func (h *Host) ServeHTTP(t TB, port int) {
	t.Helper()
	ln, _ := h.listen(t, "tcp", port)
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Host", h.Name)
			w.Header().Set("Content-Type", "text/plain")
			if r.URL.Path == "/"+ClientIPRequest {
				_, _ = io.WriteString(w, r.RemoteAddr)
				return
			}
			_, _ = io.WriteString(w, h.Name)
		}),
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
}

// DialTCP connects from h's namespace (the socket is created there).
func (h *Host) DialTCP(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr.String())
		return err
	})
	return c, err
}

// DialUDP makes a connected UDP socket in h's namespace: ICMP errors
// (port unreachable from a REJECT) come back as ECONNREFUSED on Read.
func (h *Host) DialUDP(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, "udp", addr.String())
		return err
	})
	return c, err
}

// AskTCP connects from h to addr and returns the first line the server
// sends (a ServeTCP server's name), without the newline.
func (h *Host) AskTCP(addr netip.AddrPort, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.DialTCP(ctx, addr)
	if err != nil {
		return "", fmt.Errorf("%s -> tcp %s: %w", h.Name, addr, err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s -> tcp %s: read: %w", h.Name, addr, err)
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// AskUDP sends one datagram from h to addr and returns the answer (a
// ServeUDP server's name). Nothing is resent.
func (h *Host) AskUDP(addr netip.AddrPort, timeout time.Duration) (string, error) {
	return h.AskUDPPayload(addr, "name?", timeout)
}

// AskUDPPayload sends payload in one datagram from h to addr and returns
// the answer; ClientIPRequest asks a ServeUDP server for the source
// address it sees.
func (h *Host) AskUDPPayload(addr netip.AddrPort, payload string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := h.DialUDP(ctx, addr)
	if err != nil {
		return "", fmt.Errorf("%s -> udp %s: %w", h.Name, addr, err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	if _, err := io.WriteString(c, payload); err != nil {
		return "", fmt.Errorf("%s -> udp %s: write: %w", h.Name, addr, err)
	}
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		return "", fmt.Errorf("%s -> udp %s: read: %w", h.Name, addr, err)
	}
	return string(buf[:n]), nil
}

// AskHTTP GETs http://addr/path from h (a fresh connection each time)
// and returns the body; a status other than 200 is an error.
func (h *Host) AskHTTP(addr netip.AddrPort, path string, timeout time.Duration) (string, error) {
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				return h.DialTCP(ctx, addr)
			},
		},
	}
	defer client.CloseIdleConnections()
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	resp, err := client.Get("http://" + addr.String() + path)
	if err != nil {
		return "", fmt.Errorf("%s -> http %s%s: %w", h.Name, addr, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("%s -> http %s%s: %w", h.Name, addr, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s -> http %s%s: status %s", h.Name, addr, path, resp.Status)
	}
	return string(body), nil
}
