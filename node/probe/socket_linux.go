package probe

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// errNoSocket: dialSocket does not dial this address; use probeDialer.
var errNoSocket = errors.New("no direct socket for this address")

// dialSocket starts a TCP connection to ap as probeDialer does (SO_LINGER
// of 1 second, no keep-alive), for an IPv4 or IPv6 address without a
// zone, and returns it once connect has been called: waitConnected
// finishes it. The socket is non-blocking in the runtime's poller as an
// *os.File, so reads, writes and deadlines work as on a net.Conn, without
// the net package's resolver and bookkeeping (three system calls and a
// wake-up fewer per connection on loopback, where the handshake is done
// when connect returns). Errors are the net package's: "dial tcp
// 127.0.0.1:80: connect: connection refused".
func dialSocket(ap netip.AddrPort) (*sockConn, error) {
	addr := ap.Addr()
	var family int
	var sa syscall.Sockaddr
	switch {
	case addr.Is4():
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: addr.As4()}
	case addr.Is6() && !addr.Is4In6() && addr.Zone() == "":
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16()}
	default:
		return nil, errNoSocket
	}
	c := &sockConn{raddr: ap}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return nil, c.dialErr(os.NewSyscallError("socket", err))
	}
	_ = syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
	switch err := syscall.Connect(fd, sa); err {
	case nil, syscall.EISCONN:
	case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
		c.pending = true
	default:
		_ = syscall.Close(fd)
		return nil, c.dialErr(os.NewSyscallError("connect", err))
	}
	c.f = os.NewFile(uintptr(fd), "")
	return c, nil
}

// sockConn is a TCP connection opened by dialSocket.
type sockConn struct {
	f       *os.File
	raddr   netip.AddrPort
	pending bool // connect has not finished
}

// waitConnected waits, within the connection's deadline, for a connect
// that returned EINPROGRESS, as the net package's dial: the socket is
// connected once it has a peer; SO_ERROR says why not.
func (c *sockConn) waitConnected() error {
	if !c.pending {
		return nil
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return c.dialErr(err)
	}
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		if _, err := syscall.Getpeername(int(fd)); err == nil {
			return true
		}
		nerr, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			cerr = os.NewSyscallError("getsockopt", err)
			return true
		}
		switch e := syscall.Errno(nerr); e {
		case 0, syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
			return false // not yet: wait until writable
		case syscall.EISCONN:
			return true
		default:
			cerr = os.NewSyscallError("connect", e)
			return true
		}
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return c.dialErr(err)
	}
	c.pending = false
	return nil
}

func (c *sockConn) dialErr(err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(c.raddr), Err: err}
}

// ioErr words a read or write error as a net.Conn does: "read tcp
// 127.0.0.1:40000->127.0.0.1:80: read: connection reset by peer".
func (c *sockConn) ioErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return os.ErrDeadlineExceeded // the exchange words it
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errno, ok := err.(syscall.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	oe := &net.OpError{Op: op, Net: "tcp", Addr: net.TCPAddrFromAddrPort(c.raddr), Err: err}
	if rc, e := c.f.SyscallConn(); e == nil {
		_ = rc.Control(func(fd uintptr) {
			if sa, err := syscall.Getsockname(int(fd)); err == nil {
				oe.Source = sockaddrToTCP(sa)
			}
		})
	}
	return oe
}

func sockaddrToTCP(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
	}
	return nil
}

func (c *sockConn) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	if err != nil && err != io.EOF {
		err = c.ioErr("read", err)
	}
	return n, err
}

func (c *sockConn) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	return n, c.ioErr("write", err)
}

func (c *sockConn) Close() error                  { return c.f.Close() }
func (c *sockConn) SetDeadline(t time.Time) error { return c.f.SetDeadline(t) }
