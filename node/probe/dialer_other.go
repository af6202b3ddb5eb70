//go:build !unix

package probe

import "net"

// probeDialer is a plain dialer where SO_LINGER is not set.
func probeDialer() *net.Dialer { return &net.Dialer{} }
