package standalone

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// Published ports of `up --network netns`. The node runs in a namespace of
// its own, so what it listens on (the ingress controller, the local API's
// TCP address, cluster DNS) exists only there. The parent, which stays in
// the host's namespaces, publishes each on the host's loopback the way
// `docker run -p 127.0.0.1:8080:8080` does, without a rule in the host's
// namespace: it binds the host address itself and relays every connection
// (and every DNS client's datagrams) through a socket created inside the
// node namespace (sandbox.Relay).
//
//   - ingress: --ingress-http-addr and --ingress-https-addr (default
//     127.0.0.1:8080 and 127.0.0.1:8443) on the host, relayed to the same
//     address and port inside the node namespace, where the ingress
//     controller listens (its own loopback);
//   - the local API: --api-addr likewise;
//   - cluster DNS: --dns-publish-addr (default 127.0.0.1:1053; "" for none)
//     on the host, UDP and TCP, relayed to the node address and --dns-port
//     inside the node namespace.
//
// A port 0 is resolved by the parent, which tells the child the addresses
// it bound (EnvPublished), so both sides use the same port.

// EnvPublished carries the addresses the parent published (JSON of
// publishedPorts) to the child.
const EnvPublished = "SWITCHBOARD_PUBLISHED"

// DefaultDNSPublishAddr is where `up --network netns` publishes cluster
// DNS on the host.
const DefaultDNSPublishAddr = "127.0.0.1:1053"

// publishRequest is what a user asked to publish ("" for nothing).
type publishRequest struct {
	IngressHTTP, IngressHTTPS string
	API                       string
	DNS                       string
	// DNSTarget is cluster DNS inside the node namespace (node address
	// and --dns-port).
	DNSTarget string
}

// publishedPorts is what the parent bound, passed to the child.
type publishedPorts struct {
	IngressHTTP  string `json:"ingressHTTP,omitempty"`
	IngressHTTPS string `json:"ingressHTTPS,omitempty"`
	// IngressOff says why the ingress is not published (a host port
	// taken): the child runs none, as `up` does when its port is taken.
	IngressOff string `json:"ingressOff,omitempty"`
	API        string `json:"api,omitempty"`
	DNS        string `json:"dns,omitempty"`
}

// publisher is the parent's set of relays.
type publisher struct {
	log    *slog.Logger
	relays []*relayTarget
	wg     sync.WaitGroup
}

type relayTarget struct {
	what   string
	r      *sandbox.Relay
	target string
}

// publish binds the host's addresses. A taken API address is an error (as
// in the loopback sandbox); a taken ingress or DNS address is reported on
// out and left unpublished.
func publish(req publishRequest, out io.Writer, log *slog.Logger) (*publisher, publishedPorts, error) {
	p := &publisher{log: log}
	var got publishedPorts
	fail := func(err error) (*publisher, publishedPorts, error) {
		p.close()
		return nil, publishedPorts{}, err
	}
	bind := func(what, network, addr string) (*sandbox.Relay, error) {
		r, err := sandbox.ListenRelay(network, addr, log.With("published", what))
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	if req.IngressHTTP != "" && req.IngressHTTPS != "" {
		h, err := bind("ingress-http", "tcp", req.IngressHTTP)
		var hs *sandbox.Relay
		if err == nil {
			hs, err = bind("ingress-https", "tcp", req.IngressHTTPS)
			if err != nil {
				h.Close()
			}
		}
		if err != nil {
			got.IngressOff = err.Error()
			fmt.Fprintf(out, "ingress: not published on the host: %v (choose --ingress-http-addr/--ingress-https-addr, or --no-ingress)\n", err)
		} else {
			got.IngressHTTP, got.IngressHTTPS = h.Addr().String(), hs.Addr().String()
			p.relays = append(p.relays,
				&relayTarget{what: "ingress HTTP", r: h, target: got.IngressHTTP},
				&relayTarget{what: "ingress HTTPS", r: hs, target: got.IngressHTTPS})
		}
	}
	if req.API != "" {
		r, err := bind("api", "tcp", req.API)
		if err != nil {
			return fail(fmt.Errorf("local API address %s: %w", req.API, err))
		}
		got.API = r.Addr().String()
		p.relays = append(p.relays, &relayTarget{what: "local API", r: r, target: got.API})
	}
	if req.DNS != "" && req.DNSTarget != "" {
		u, err := bind("dns-udp", "udp", req.DNS)
		var t *sandbox.Relay
		if err == nil {
			// TCP on the port UDP got (port 0 picks one for both).
			t, err = bind("dns-tcp", "tcp", u.Addr().String())
			if err != nil {
				u.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(out, "cluster DNS: not published on the host: %v (choose --dns-publish-addr)\n", err)
		} else {
			got.DNS = u.Addr().String()
			p.relays = append(p.relays,
				&relayTarget{what: "cluster DNS (UDP)", r: u, target: req.DNSTarget},
				&relayTarget{what: "cluster DNS (TCP)", r: t, target: req.DNSTarget})
		}
	}
	return p, got, nil
}

// serve relays into the node namespace until close.
func (p *publisher) serve(netnsPath string) {
	for _, rt := range p.relays {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			if err := rt.r.Serve(context.Background(), netnsPath, rt.target); err != nil {
				p.log.Error("published port stopped", "what", rt.what, "addr", rt.r.Addr(), "err", err)
			}
		}()
	}
}

func (p *publisher) close() {
	if p == nil {
		return
	}
	for _, rt := range p.relays {
		_ = rt.r.Close()
	}
	p.wg.Wait()
}

// env is the child's EnvPublished entry.
func (got publishedPorts) env() string {
	b, _ := json.Marshal(got)
	return EnvPublished + "=" + string(b)
}

// childPublished reads EnvPublished in the child ("" unset: nothing
// published).
func childPublished() (*publishedPorts, error) {
	v := os.Getenv(EnvPublished)
	if v == "" {
		return nil, nil
	}
	var got publishedPorts
	if err := json.Unmarshal([]byte(v), &got); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvPublished, err)
	}
	return &got, nil
}

// nodeDNSTarget is where cluster DNS listens inside the node namespace:
// the node address (the pod range's first address, the bridge's) and the
// port.
func nodeDNSTarget(podCIDR netip.Prefix, dnsPort int) string {
	if !podCIDR.IsValid() {
		podCIDR = DefaultNetNSPodCIDR
	}
	if dnsPort == 0 {
		dnsPort = 53
	}
	return net.JoinHostPort(podCIDR.Masked().Addr().Next().String(), strconv.Itoa(dnsPort))
}

// digHintAt is digHint for a published DNS address.
func digHintAt(addr, zone string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ""
	}
	return digHint(ap.Addr(), int(ap.Port()), zone)
}
