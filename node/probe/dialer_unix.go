//go:build unix

package probe

import (
	"net"
	"syscall"
)

// probeDialer is kubelet's ProbeDialer: SO_LINGER of 1 second so probe
// sockets do not linger in TIME-WAIT for the OS default of 60 seconds
// (kubernetes/kubernetes#89898), while still closing with a FIN. Unlike
// kubelet's it does not turn on TCP keep-alive: the first keep-alive
// probe would go out after 15 s of silence, and a probe's connection
// lives for one request within its timeout, so the four setsockopt calls
// per connection bought nothing.
func probeDialer() *net.Dialer {
	return &net.Dialer{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 1})
			})
		},
	}
}
