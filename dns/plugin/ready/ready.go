package ready

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
)

// list is the plugins one /ready endpoint asks.
type list struct {
	mu    sync.Mutex
	rs    []Readiness
	names []string
	keep  bool // ask again after a plugin said ready ("monitor continuously")
}

func (l *list) add(r Readiness, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rs = append(l.rs, r)
	l.names = append(l.names, name)
}

// ready asks every plugin; it returns the sorted, comma-joined names of
// those not ready. With "until-ready" a plugin that said ready once is not
// asked again, as CoreDNS.
func (l *list) ready() (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var not []string
	for i, r := range l.rs {
		if r == nil {
			continue
		}
		if r.Ready() {
			if !l.keep {
				l.rs[i] = nil
			}
			continue
		}
		not = append(not, l.names[i])
	}
	if len(not) == 0 {
		return true, ""
	}
	sort.Strings(not)
	return false, strings.Join(slices.Compact(not), ",")
}

// endpoint is one /ready of one instance at one address; every block of
// the instance that names the address joins it.
type endpoint struct {
	key     epKey
	list    *list
	bound   net.Addr
	release func()
	refs    int
	log     *slog.Logger
}

type epKey struct {
	inst *dnsserver.Instance
	addr string
}

var (
	mu        sync.Mutex
	endpoints = map[epKey]*endpoint{}
)

func join(inst *dnsserver.Instance, addr string, keep bool, log *slog.Logger) (*endpoint, error) {
	mu.Lock()
	defer mu.Unlock()
	k := epKey{inst, addr}
	if ep, ok := endpoints[k]; ok {
		ep.refs++
		if keep {
			ep.list.keep = true
		}
		return ep, nil
	}
	ep := &endpoint{key: k, list: &list{keep: keep}, refs: 1, log: log}
	bound, release, err := dnsserver.ServeHTTP(addr, "/ready", ep)
	if err != nil {
		return nil, err
	}
	ep.bound, ep.release = bound, release
	endpoints[k] = ep
	return ep, nil
}

func (ep *endpoint) leave() {
	mu.Lock()
	ep.refs--
	last := ep.refs == 0
	if last {
		delete(endpoints, ep.key)
	}
	mu.Unlock()
	if last {
		ep.release()
	}
}

// ServeHTTP answers 200 OK when every plugin is ready, else 503 and the
// names of those that are not.
func (ep *endpoint) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	ok, not := ep.list.ready()
	if ok {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, http.StatusText(http.StatusOK))
		return
	}
	ep.log.Info("Plugins not ready", "plugins", not)
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, not)
}

// ListenAddr returns where /ready of inst is served for addr, nil when it
// is not; for tests that use port 0.
func ListenAddr(inst *dnsserver.Instance, addr string) net.Addr {
	mu.Lock()
	defer mu.Unlock()
	if ep, ok := endpoints[epKey{inst, addr}]; ok {
		return ep.bound
	}
	return nil
}
