//go:build linux

package rawsock

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns a connected loopback TCP pair: a raw client and the net
// package's server side.
func pair(t testing.TB) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	rc, ok := Wrap(c).(*Conn)
	if !ok {
		t.Fatalf("Wrap(%T) is not a *Conn", c)
	}
	t.Cleanup(func() { rc.Close(); s.Close() })
	return rc, s.(*net.TCPConn)
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Wrap(a); got != a {
		t.Fatalf("Wrap(net.Pipe) = %T, want the pipe itself", got)
	}
	c, _ := pair(t)
	// The TCPConn's other methods stay reachable: CloseWrite (net/http's
	// and the fast path's orderly close), SyscallConn (MSG_PEEK checks).
	var _ interface{ CloseWrite() error } = c
	var _ syscall.Conn = c
	if c.NetConn() != c.TCPConn {
		t.Fatal("NetConn is not the wrapped connection")
	}
}

func TestReadWriteBothWays(t *testing.T) {
	c, s := pair(t)
	for _, msg := range []string{"GET / HTTP/1.1\r\n\r\n", "x", strings.Repeat("y", 70000)} {
		if n, err := c.Write([]byte(msg)); err != nil || n != len(msg) {
			t.Fatalf("Write = %d, %v; want %d", n, err, len(msg))
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(s, got); err != nil || string(got) != msg {
			t.Fatalf("peer read %d bytes, %v", len(got), err)
		}
		if _, err := s.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("raw read %q..., %v", got[:min(10, len(got))], err)
		}
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
	if n, err := c.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v; want 0, nil", n, err)
	}
}

// The errors are the ones net's own Read and Write give, checked the
// ways their callers check them.
func TestErrors(t *testing.T) {
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
	}
	cases := []struct {
		name string
		do   func(c *Conn, s *net.TCPConn) error
		ok   func(error) bool
		want string
	}{
		{"end of stream is io.EOF", func(c *Conn, s *net.TCPConn) error {
			s.CloseWrite()
			_, err := c.Read(make([]byte, 10))
			return err
		}, func(err error) bool { return err == io.EOF }, "io.EOF"},
		{"read deadline", func(c *Conn, s *net.TCPConn) error {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := c.Read(make([]byte, 10))
			return err
		}, isTimeout, "a timeout net.Error wrapping os.ErrDeadlineExceeded"},
		{"write deadline with a peer that does not read", func(c *Conn, s *net.TCPConn) error {
			c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := c.Write(make([]byte, 64<<20))
			if n == 0 || n == 64<<20 {
				t.Errorf("partial write n = %d, want between 0 and all", n)
			}
			return err
		}, isTimeout, "a timeout"},
		{"read after Close", func(c *Conn, s *net.TCPConn) error {
			c.Close()
			_, err := c.Read(make([]byte, 10))
			return err
		}, func(err error) bool { return errors.Is(err, net.ErrClosed) }, "net.ErrClosed"},
		{"Close unblocks a waiting Read", func(c *Conn, s *net.TCPConn) error {
			time.AfterFunc(20*time.Millisecond, func() { c.Close() })
			_, err := c.Read(make([]byte, 10))
			return err
		}, func(err error) bool { return errors.Is(err, net.ErrClosed) }, "net.ErrClosed"},
		{"reset by peer", func(c *Conn, s *net.TCPConn) error {
			c.Write([]byte("unread"))
			time.Sleep(10 * time.Millisecond)
			s.SetLinger(0)
			s.Close() // unread data: the kernel sends RST
			time.Sleep(10 * time.Millisecond)
			_, err := c.Read(make([]byte, 10))
			return err
		}, func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }, "ECONNRESET"},
		{"write after reset", func(c *Conn, s *net.TCPConn) error {
			s.SetLinger(0)
			s.Close()
			time.Sleep(10 * time.Millisecond)
			var err error
			for i := 0; i < 3 && err == nil; i++ {
				_, err = c.Write([]byte("x"))
			}
			return err
		}, func(err error) bool { return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) }, "EPIPE or ECONNRESET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, s := pair(t)
			err := tc.do(c, s)
			if !tc.ok(err) {
				t.Fatalf("error %v (%T), want %s", err, err, tc.want)
			}
			if tc.want != "io.EOF" {
				var oe *net.OpError
				if !errors.As(err, &oe) || oe.Op != "read" && oe.Op != "write" || oe.Addr == nil {
					t.Fatalf("error %#v is not a read/write *net.OpError with the address", err)
				}
			}
		})
	}
}

// A write larger than the socket buffers meets EAGAIN and waits for the
// poller; every byte arrives, in order, while the other direction is used
// at the same time.
func TestLargeWritesAndConcurrentReads(t *testing.T) {
	c, s := pair(t)
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	var peerSum [32]byte
	go func() { // the peer reads slowly at first, then at once
		defer wg.Done()
		time.Sleep(50 * time.Millisecond)
		h := sha256.New()
		io.CopyN(h, s, int64(len(data)))
		copy(peerSum[:], h.Sum(nil))
		s.Write([]byte("done"))
	}()
	go func() {
		defer wg.Done()
		if n, err := c.Write(data); err != nil || n != len(data) {
			t.Errorf("Write = %d, %v", n, err)
		}
	}()
	got, err := io.ReadAll(io.LimitReader(c, 4))
	wg.Wait()
	if err != nil || string(got) != "done" {
		t.Fatalf("read %q, %v", got, err)
	}
	if peerSum != sha256.Sum256(data) {
		t.Fatal("the peer received different bytes")
	}
}

// net/http serves over raw connections (the ingress hands connections
// the fast path does not take to net/http) and its client uses them.
func TestNetHTTPOverRawConns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(bytes.ToUpper(body))
	})}
	go srv.Serve(wrapListener{ln})
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{Dial: func(n, a string) (net.Conn, error) {
		c, err := net.Dial(n, a)
		if err != nil {
			return nil, err
		}
		return Wrap(c), nil
	}}}
	for i := 0; i < 5; i++ {
		body := strings.Repeat("abc", 1+i*20000)
		resp, err := client.Post("http://"+ln.Addr().String()+"/", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != strings.ToUpper(body) {
			t.Fatalf("request %d: got %d bytes, want %d upper-cased", i, len(got), len(body))
		}
	}
}

type wrapListener struct{ net.Listener }

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
