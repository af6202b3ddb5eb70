package kubernetes

import (
	"context"
	"errors"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// serverUpstream is CoreDNS's upstream.Upstream: it asks the server that
// is answering the query (from the context) again, through its whole
// chain, with the original query's EDNS0.
type serverUpstream struct{ srv *dnsserver.Server }

func (u serverUpstream) Lookup(ctx context.Context, state request.Request, name string, typ uint16) (*dns.Msg, error) {
	if u.srv == nil {
		return nil, errors.New("no full server is running")
	}
	req := state.Req.Copy()
	req.Question = []dns.Question{{Name: dns.Fqdn(name), Qtype: typ, Qclass: dns.ClassINET}}
	nw := &nonWriter{ResponseWriter: state.W}
	u.srv.ServeDNS(ctx, nw, req)
	return nw.msg, nil
}

// nonWriter keeps the answer instead of sending it.
type nonWriter struct {
	dns.ResponseWriter
	msg *dns.Msg
}

func (w *nonWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }

func (w *nonWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msg = m
	return len(b), nil
}

// upstream returns what resolves names outside the plugin's zones: the
// configured Upstream, else the server answering ctx, else nil.
func (k *Kubernetes) upstream(ctx context.Context) Upstreamer {
	if k.Upstream != nil {
		return k.Upstream
	}
	if srv := dnsserver.FromContext(ctx); srv != nil {
		return serverUpstream{srv}
	}
	return nil
}
