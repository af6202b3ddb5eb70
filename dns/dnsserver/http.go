package dnsserver

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The HTTP endpoints of plugins (health's /health, ready's /ready,
// prometheus's /metrics) share one listener per address: across server
// blocks, across plugins that name the same address, and across a
// reload's old and new instance, so a reload never closes an endpoint
// (CoreDNS closes them first and loses them when the reload fails).

type httpListener struct {
	addr  string // as asked; "" when not shared (port 0)
	ln    net.Listener
	srv   *http.Server
	mu    sync.RWMutex
	paths map[string][]*httpEntry // newest last
}

type httpEntry struct{ h http.Handler }

var httpPool = struct {
	sync.Mutex
	m map[string]*httpListener
}{m: map[string]*httpListener{}}

// ServeHTTP serves h at path on addr ("host:port"; port 0 picks one and is
// never shared). The newest handler of a path answers; release removes
// this one, and the listener closes when none is left. It returns the
// bound address.
func ServeHTTP(addr, path string, h http.Handler) (bound net.Addr, release func(), err error) {
	httpPool.Lock()
	defer httpPool.Unlock()
	l, ok := httpPool.m[addr]
	if !ok || strings.HasSuffix(addr, ":0") {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		l = &httpListener{ln: ln, paths: map[string][]*httpEntry{}}
		l.srv = &http.Server{
			Handler:      l,
			ReadTimeout:  5 * time.Second,
			WriteTimeout: 5 * time.Second,
			IdleTimeout:  5 * time.Second,
		}
		if !strings.HasSuffix(addr, ":0") {
			l.addr = addr
			httpPool.m[addr] = l
		}
		go func() { _ = l.srv.Serve(ln) }()
	}
	e := &httpEntry{h: h}
	l.mu.Lock()
	l.paths[path] = append(l.paths[path], e)
	l.mu.Unlock()
	var once sync.Once
	return l.ln.Addr(), func() { once.Do(func() { l.remove(path, e) }) }, nil
}

func (l *httpListener) remove(path string, e *httpEntry) {
	httpPool.Lock()
	l.mu.Lock()
	es := l.paths[path]
	for i, x := range es {
		if x == e {
			es = append(es[:i:i], es[i+1:]...)
			break
		}
	}
	if len(es) == 0 {
		delete(l.paths, path)
	} else {
		l.paths[path] = es
	}
	empty := len(l.paths) == 0
	l.mu.Unlock()
	if empty {
		if l.addr != "" && httpPool.m[l.addr] == l {
			delete(httpPool.m, l.addr)
		}
		l.ln.Close() // free the port before anyone may ask for it again
	}
	httpPool.Unlock()
	if empty {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.srv.Shutdown(ctx)
	}
}

// ServeHTTP answers with the newest handler of the request's path.
func (l *httpListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	es := l.paths[r.URL.Path]
	var h http.Handler
	if len(es) > 0 {
		h = es[len(es)-1].h
	}
	l.mu.RUnlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}
