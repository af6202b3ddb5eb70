// Package dnstest holds test helpers for the DNS server and its plugins:
// a ResponseWriter that records what a handler wrote, a fake writer with
// fixed addresses, and a test backend plugin ("testanswer") with helpers
// to start a real server on 127.0.0.1:0-style ports. Only tests import
// it.
package dnstest

import (
	"net"
	"time"

	"github.com/miekg/dns"
)

// Recorder wraps a ResponseWriter and keeps what was written.
type Recorder struct {
	dns.ResponseWriter
	Rcode int
	Len   int
	Msg   *dns.Msg
	Start time.Time
}

// NewRecorder returns a recorder around w.
func NewRecorder(w dns.ResponseWriter) *Recorder {
	return &Recorder{ResponseWriter: w, Rcode: 0, Start: time.Now()}
}

// WriteMsg records and writes m.
func (r *Recorder) WriteMsg(m *dns.Msg) error {
	r.Rcode = m.Rcode
	r.Len += m.Len()
	r.Msg = m
	if r.ResponseWriter == nil {
		return nil
	}
	return r.ResponseWriter.WriteMsg(m)
}

// Write records the length of raw bytes written.
func (r *Recorder) Write(buf []byte) (int, error) {
	r.Len += len(buf)
	if r.ResponseWriter == nil {
		return len(buf), nil
	}
	return r.ResponseWriter.Write(buf)
}

// Writer is a fake ResponseWriter: the client is 127.0.0.1:40212 over
// UDP (TCP when TCP is true) and the server 127.0.0.1:53. Writes are kept
// in Msg.
type Writer struct {
	TCP    bool
	Remote net.Addr // overrides the client address
	Msg    *dns.Msg
}

var (
	localUDP  = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	localTCP  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	remoteUDP = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
	remoteTCP = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
)

// LocalAddr implements dns.ResponseWriter (shared, read-only addresses:
// no allocation, so benchmarks measure the code under test).
func (w *Writer) LocalAddr() net.Addr {
	if w.TCP {
		return localTCP
	}
	return localUDP
}

// RemoteAddr implements dns.ResponseWriter.
func (w *Writer) RemoteAddr() net.Addr {
	if w.Remote != nil {
		return w.Remote
	}
	if w.TCP {
		return remoteTCP
	}
	return remoteUDP
}

// WriteMsg keeps m.
func (w *Writer) WriteMsg(m *dns.Msg) error { w.Msg = m; return nil }

// Write unpacks and keeps buf.
func (w *Writer) Write(buf []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return 0, err
	}
	w.Msg = m
	return len(buf), nil
}

// Close, TsigStatus, TsigTimersOnly, Hijack, Network implement
// dns.ResponseWriter.
func (w *Writer) Close() error        { return nil }
func (w *Writer) TsigStatus() error   { return nil }
func (w *Writer) TsigTimersOnly(bool) {}
func (w *Writer) Hijack()             {}
func (w *Writer) Network() string {
	if w.TCP {
		return "tcp"
	}
	return "udp"
}

var _ dns.ResponseWriter = (*Writer)(nil)
