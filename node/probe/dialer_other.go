//go:build !unix

package probe

import "net"

// probeDialer is a plain dialer where SO_LINGER is not set (without
// TCP keep-alive, as on unix).
func probeDialer() *net.Dialer { return &net.Dialer{KeepAlive: -1} }
