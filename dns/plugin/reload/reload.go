package reload

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/coredns/caddy/caddyfile"
	prom "github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// watcher checks one instance's Corefile.
type watcher struct {
	inst     *dnsserver.Instance
	interval time.Duration
	log      *slog.Logger
	metrics  *metrics
	quit     chan struct{}
	once     sync.Once
}

// Hash is the SHA512 of a Corefile's parsed server blocks, as CoreDNS
// computes it: what the reload plugin compares.
func Hash(filename string, corefile []byte) ([sha512.Size]byte, error) {
	blocks, err := caddyfile.Parse(filename, bytes.NewReader(corefile), nil)
	if err != nil {
		return [sha512.Size]byte{}, err
	}
	j, err := json.Marshal(blocks)
	if err != nil {
		return [sha512.Size]byte{}, err
	}
	return sha512.Sum512(j), nil
}

func (w *watcher) start() error {
	sum, err := Hash(w.inst.Filename, w.inst.Corefile)
	if err != nil {
		return err
	}
	w.log.Info("Running configuration SHA512 = " + hex.EncodeToString(sum[:]))
	w.metrics.setVersion(sum)
	go w.run(sum)
	return nil
}

func (w *watcher) stop() { w.once.Do(func() { close(w.quit) }) }

func (w *watcher) run(sum [sha512.Size]byte) {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-tick.C:
		}
		corefile, err := os.ReadFile(w.inst.Filename)
		if err != nil {
			continue // as CoreDNS: an unreadable Corefile is tried again later
		}
		s, err := Hash(w.inst.Filename, corefile)
		if err != nil {
			w.log.Warn("Corefile parse failed: " + err.Error())
			continue
		}
		if s == sum {
			continue
		}
		sum = s
		select {
		case <-w.quit:
			return
		default:
		}
		if err := w.inst.Reload(corefile); err != nil {
			w.log.Error("Corefile changed but reload failed: " + err.Error())
			w.metrics.failed.Inc()
			continue // the running instance stays, and so does this watcher
		}
		return // the new instance watches from now on
	}
}

type metrics struct {
	failed  prom.Counter
	version *prom.GaugeVec

	mu   sync.Mutex
	last string
}

var (
	metricsMu sync.Mutex
	byReg     = map[prom.Registerer]*metrics{}
)

func metricsFor(reg prom.Registerer) *metrics {
	metricsMu.Lock()
	defer metricsMu.Unlock()
	if m, ok := byReg[reg]; ok {
		return m
	}
	m := &metrics{
		failed: prom.NewCounter(prom.CounterOpts{
			Namespace: plugin.Namespace,
			Subsystem: "reload",
			Name:      "failed_total",
			Help:      "Counter of the number of failed reload attempts.",
		}),
		version: prom.NewGaugeVec(prom.GaugeOpts{
			Namespace: plugin.Namespace,
			Subsystem: "reload",
			Name:      "version_info",
			Help:      "A metric with a constant '1' value labeled by hash, and value which type of hash generated.",
		}, []string{"hash", "value"}),
	}
	m.failed = plugin.Register(reg, m.failed)
	m.version = plugin.Register(reg, m.version)
	if reg != nil {
		byReg[reg] = m
	}
	return m
}

// setVersion labels coredns_reload_version_info with the running
// configuration's hash.
func (m *metrics) setVersion(sum [sha512.Size]byte) {
	v := hex.EncodeToString(sum[:])
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last != "" && m.last != v {
		m.version.Delete(prom.Labels{"hash": "sha512", "value": m.last})
	}
	m.version.WithLabelValues("sha512", v).Set(1)
	m.last = v
}
