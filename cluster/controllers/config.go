package controllers

import (
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/cluster"
)

// Config configures the Allocator and the Manager (they take the same one).
type Config struct {
	// ServiceCIDR is the range ClusterIPs come from, e.g. 127.96.0.0/16
	// (loopback sandbox) or 10.96.0.0/12. At most 2^20 addresses (/12 for
	// IPv4, /108 for IPv6), as the API server's --service-cluster-ip-range.
	ServiceCIDR netip.Prefix
	// NodePortRange is the inclusive node-port range; default {30000, 32767}.
	NodePortRange [2]int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics; nil means they are not registered.
	Registerer prometheus.Registerer
	// Recorder writes the controllers' Events. When nil, each controller
	// records through its own recorder named like the upstream component
	// (default-scheduler, replicaset-controller, deployment-controller, ...).
	Recorder *cluster.Recorder
	// Workers is the number of workers per controller; default 2.
	Workers int
	// MaxEndpointsPerSlice bounds the endpoints of one EndpointSlice, as
	// kube-controller-manager's --max-endpoints-per-slice; default 100.
	MaxEndpointsPerSlice int
}

// Defaults as kube-apiserver and kube-controller-manager have them.
const (
	DefaultNodePortMin          = 30000
	DefaultNodePortMax          = 32767
	DefaultWorkers              = 2
	DefaultMaxEndpointsPerSlice = 100
)

func (c Config) withDefaults() Config {
	if c.NodePortRange == [2]int{} {
		c.NodePortRange = [2]int{DefaultNodePortMin, DefaultNodePortMax}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxEndpointsPerSlice <= 0 {
		c.MaxEndpointsPerSlice = DefaultMaxEndpointsPerSlice
	}
	return c
}
