//go:build !linux

package probe

import (
	"errors"
	"net/netip"
	"time"
)

// errNoSocket: dialSocket does not dial this address; use probeDialer.
var errNoSocket = errors.New("no direct socket for this address")

// dialSocket is Linux only; elsewhere probeDialer dials.
func dialSocket(netip.AddrPort) (*sockConn, error) { return nil, errNoSocket }

// sockConn is never made outside Linux.
type sockConn struct{}

func (*sockConn) waitConnected() error        { return nil }
func (*sockConn) Read([]byte) (int, error)    { return 0, errNoSocket }
func (*sockConn) Write([]byte) (int, error)   { return 0, errNoSocket }
func (*sockConn) Close() error                { return nil }
func (*sockConn) SetDeadline(time.Time) error { return nil }
