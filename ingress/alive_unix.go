//go:build unix

package ingress

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"github.com/switchboard-dev/switchboard/ingress/guard"
)

// alive reports whether the client of a fast-path connection is still
// there while its request waits on an endpoint: a look at the socket
// (MSG_PEEK, non-blocking) that consumes nothing. A closed or reset
// socket is gone; pending bytes (a pipelined request, a TLS alert) or
// nothing yet count as there.
func (fc *fastConn) alive() bool {
	if fc.br.Buffered() > fc.headLen {
		return true
	}
	var c net.Conn = fc.conn
	if gc, ok := c.(*guard.Conn); ok {
		c = gc.NetConn()
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			gone = n == 0 // orderly shutdown
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		default:
			gone = true
		}
		return true
	})
	return err == nil && !gone
}
