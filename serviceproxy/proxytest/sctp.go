package proxytest

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/internal/testnet"
)

// Go's net package has no SCTP; these helpers use one-to-one style SCTP
// sockets (SOCK_STREAM, IPPROTO_SCTP: "a TCP-style socket", RFC 6458
// section 4) through raw system calls, created inside a namespace.

// SCTPSupport tells whether the kernel can make an SCTP socket in h's
// namespace; when it cannot, the error says why (EPROTONOSUPPORT: no
// sctp module).
func SCTPSupport(h *testnet.Host) error {
	return h.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
		if err != nil {
			return fmt.Errorf("socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) in %s: %w", h.Name, err)
		}
		return unix.Close(fd)
	})
}

// ServeSCTP serves SCTP on port in h's namespace until the test ends:
// each association gets "NAME\n" (h.Name) and is closed.
func ServeSCTP(t *testing.T, h *testnet.Host, port int) {
	t.Helper()
	var fd int
	err := h.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
		if err != nil {
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Listen(fd, 64); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("proxytest: listen sctp :%d in %s: %v", port, h.Name, err)
	}
	var (
		mu     sync.Mutex
		closed bool
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
			if err != nil {
				mu.Lock()
				done := closed
				mu.Unlock()
				if done || !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.ECONNABORTED) {
					return
				}
				continue
			}
			_, _ = unix.Write(nfd, []byte(h.Name+"\n"))
			unix.Close(nfd)
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		// shutdown wakes the blocked accept (EINVAL), then the fd closes.
		_ = unix.Shutdown(fd, unix.SHUT_RDWR)
		wg.Wait()
		unix.Close(fd)
	})
}

// AskSCTP connects from h to addr over SCTP and returns the first line
// the server sends, without the newline.
func AskSCTP(h *testnet.Host, addr netip.AddrPort, timeout time.Duration) (string, error) {
	if !addr.Addr().Is4() {
		return "", fmt.Errorf("sctp %s: only IPv4 here", addr)
	}
	var answer string
	err := h.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		buf := make([]byte, 256)
		n, err := unix.Read(fd, buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		answer = strings.TrimSuffix(string(buf[:max(n, 0)]), "\n")
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("%s -> sctp %s: %w", h.Name, addr, err)
	}
	return answer, nil
}
