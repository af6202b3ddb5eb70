//go:build !linux

// Package rawsock: on systems other than Linux connections keep the net
// package's reads and writes.
package rawsock

import "net"

// Wrap returns c unchanged.
func Wrap(c net.Conn) net.Conn { return c }
