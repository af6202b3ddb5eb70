package dnstest

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// ServeHandler runs h on a UDP and a TCP socket on 127.0.0.1 (port 0) the way
// the server does: when the handler wrote nothing and its rcode says the
// server answers (SERVFAIL, REFUSED, ...), it writes that rcode.
func ServeHandler(t testing.TB, h plugin.Handler) string {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		rcode, _ := h.ServeDNS(context.Background(), w, r)
		if !plugin.ClientWrite(rcode) {
			w.WriteMsg(new(dns.Msg).SetRcode(r, rcode))
		}
	})
	// The UDP port picked by the kernel may be taken for TCP: try again.
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); l.Close() })
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: l, Handler: handler}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe() //nolint:errcheck // ends at Shutdown
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return pc.LocalAddr().String()
}
