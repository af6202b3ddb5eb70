package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRelay publishes TCP and UDP echo servers that listen only inside a
// throwaway namespace on the test's loopback and checks that a client in
// the test's namespace reaches them through the relay, that TCP
// half-closes pass through, and that Close ends live connections.
func TestRelay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the relay test needs root (network namespaces)")
	}
	name := fmt.Sprintf("sb-relay-%d-%d", os.Getpid(), rand.IntN(1e6))
	t.Cleanup(func() { _ = RemoveNamedNetNS(NetnsDir + "/" + name) })
	path, err := CreateNamedNetNS(name)
	if err != nil {
		t.Fatal(err)
	}
	// Servers inside the namespace: its 127.0.0.1 is not the host's.
	var tl net.Listener
	var ul net.PacketConn
	if err := InNetNS(path, func() error {
		var err error
		if tl, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		ul, err = net.ListenPacket("udp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close(); ul.Close() })
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Echo upper-cased until EOF, then a trailer: proves the
				// client's half-close arrived.
				b, _ := io.ReadAll(c)
				_, _ = c.Write([]byte(strings.ToUpper(string(b)) + "|eof"))
			}()
		}
	}()
	go func() {
		b := make([]byte, 1500)
		for {
			n, a, err := ul.ReadFrom(b)
			if err != nil {
				return
			}
			_, _ = ul.WriteTo([]byte("re:"+string(b[:n])), a)
		}
	}()
	// The host side: a loopback address of this test's own.
	host := fmt.Sprintf("127.%d.%d.%d", 60+rand.IntN(60), rand.IntN(250), 1+rand.IntN(250))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Run("tcp with half-close", func(t *testing.T) {
		r, err := ListenRelay("tcp", host+":0", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		go r.Serve(ctx, path, tl.Addr().String())
		for i := 0; i < 3; i++ {
			c, err := net.DialTimeout("tcp", r.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			msg := fmt.Sprintf("hello %d", i)
			_, _ = c.Write([]byte(msg))
			_ = c.(*net.TCPConn).CloseWrite()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			c.Close()
			if err != nil || string(got) != strings.ToUpper(msg)+"|eof" {
				t.Fatalf("got %q (%v), want %q", got, err, strings.ToUpper(msg)+"|eof")
			}
		}
	})
	t.Run("tcp close ends live connections", func(t *testing.T) {
		r, err := ListenRelay("tcp", host+":0", nil)
		if err != nil {
			t.Fatal(err)
		}
		go r.Serve(ctx, path, tl.Addr().String())
		c, err := net.DialTimeout("tcp", r.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write([]byte("x"))
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			t.Fatal("connection still open after Close")
		}
		if _, err := net.DialTimeout("tcp", r.Addr().String(), time.Second); err == nil {
			t.Fatal("listener still accepts after Close")
		}
	})
	t.Run("udp per client", func(t *testing.T) {
		r, err := ListenRelay("udp", host+":0", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		go r.Serve(ctx, path, ul.LocalAddr().String())
		for i := 0; i < 3; i++ {
			c, err := net.Dial("udp", r.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			for j := 0; j < 2; j++ {
				msg := fmt.Sprintf("q%d.%d", i, j)
				_, _ = c.Write([]byte(msg))
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, 100)
				n, err := c.Read(b)
				if err != nil || string(b[:n]) != "re:"+msg {
					t.Fatalf("client %d: got %q (%v), want %q", i, b[:n], err, "re:"+msg)
				}
			}
			c.Close()
		}
	})
	t.Run("bad network", func(t *testing.T) {
		if _, err := ListenRelay("sctp", host+":0", nil); err == nil || !strings.Contains(err.Error(), "sctp") {
			t.Fatalf("want an error naming sctp, got %v", err)
		}
	})
}
