package standalone

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress"
)

// Where up's ingress controller listens by default: the host's loopback,
// where a browser or curl --resolve reaches it.
const (
	DefaultIngressHTTPAddr  = "127.0.0.1:8080"
	DefaultIngressHTTPSAddr = "127.0.0.1:8443"
)

// newIngress builds up's ingress controller (class controller
// switchboard.dev/ingress) over the node's store. Its metrics go to up's
// registry, served by the local API's /metrics; its own status server is
// off.
func newIngress(store *cluster.Store, cfg Config, reg *prometheus.Registry, log *slog.Logger) (*ingress.Controller, error) {
	return ingress.New(ingress.Config{
		Store:      store,
		HTTPAddr:   cfg.IngressHTTPAddr,
		HTTPSAddr:  cfg.IngressHTTPSAddr,
		Registerer: reg,
		Gatherer:   reg,
		Logger:     log.With("component", "ingress"),
		Recorder:   cluster.NewRecorder(store, "ingress-controller", cfg.NodeName),
		ACME:       cfg.IngressACME,
	})
}

// ingressHint is a curl line for the progress output.
func ingressHint(c *ingress.Controller) string {
	_, port, err := net.SplitHostPort(c.HTTPSAddr().String())
	if err != nil {
		return ""
	}
	host, _, _ := net.SplitHostPort(c.HTTPSAddr().String())
	return fmt.Sprintf("curl -k --resolve HOST:%s:%s https://HOST:%s/", port, host, port)
}
