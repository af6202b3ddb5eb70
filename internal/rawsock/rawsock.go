//go:build linux

// Package rawsock owns reads and writes on connected TCP sockets done by
// raw system calls: the socket stays in the runtime's network poller
// (deadlines, Close and waiting for readiness are the net package's),
// but a read or write that the kernel answers at once (the socket is
// non-blocking, so every one does: data, EAGAIN or an error) skips the
// runtime's system-call bookkeeping. That bookkeeping (entersyscall and
// exitsyscall, waking the sysmon thread when every P was idle, handing
// the P off when a call lasts) is what a proxy pays on top of the
// kernel's work for each of its four socket calls per request; nginx,
// calling the kernel directly from its event loop, does not pay it.
//
// A raw call holds its P for the length of the call. That is right only
// for calls that cannot block: reads and writes on a non-blocking
// socket. Nothing else goes through here. On other systems Wrap returns
// the connection unchanged.
package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Conn is a *net.TCPConn whose Read and Write are raw system calls; every
// other method is the TCPConn's.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu             sync.Mutex
	rbuf            []byte
	rn              int
	rerr            syscall.Errno
	readFn          func(uintptr) bool
	wmu             sync.Mutex
	wbuf            []byte
	wn              int
	werr            syscall.Errno
	writeFn         func(uintptr) bool
	laddr, raddr    net.Addr
	readOp, writeOp string
}

// Wrap returns c with raw reads and writes when it is a *net.TCPConn, and
// c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	x := &Conn{TCPConn: tc, rc: rc}
	x.readFn, x.writeFn = x.read, x.write
	return x
}

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.TCPConn }

func (c *Conn) read(fd uintptr) bool {
	for {
		n, errno := sysRead(fd, c.rbuf)
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for the poller, then try again
		}
		c.rn, c.rerr = n, errno
		return true
	}
}

func (c *Conn) write(fd uintptr) bool {
	for c.wn < len(c.wbuf) {
		n, errno := sysWrite(fd, c.wbuf[c.wn:])
		switch errno {
		case 0:
			c.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = errno
			return true
		}
	}
	return true
}

// Read reads as net.Conn's Read does: io.EOF at the end of the stream,
// a net.Error that times out at the read deadline.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case c.rerr != 0:
		return 0, c.opError("read", os.NewSyscallError("read", c.rerr))
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// Write writes all of p unless an error (or the write deadline) stops it.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werr = p, 0, 0
	err := c.rc.Write(c.writeFn)
	c.wbuf = nil
	switch {
	case err != nil:
		return c.wn, c.opError("write", err)
	case c.werr != 0:
		return c.wn, c.opError("write", os.NewSyscallError("write", c.werr))
	}
	return c.wn, nil
}

// opError is the error net's own Read and Write give: an *net.OpError
// with the addresses, wrapping the cause (os.ErrDeadlineExceeded,
// net.ErrClosed or the system call's error).
func (c *Conn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err // the RawConn's "raw-read"/"raw-write" wrapper
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
