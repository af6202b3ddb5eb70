package hosts

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// options of a hosts plugin.
type options struct {
	autoReverse bool          // make PTR records from the entries
	ttl         uint32        // TTL of every record made
	reload      time.Duration // between two checks of the file; 0 never
}

func newOptions() options {
	return options{autoReverse: true, ttl: 3600, reload: 5 * time.Second}
}

// hostMap holds the entries of one source (the file or the inline lines).
// It is never changed once built: a reload builds a new one.
type hostMap struct {
	// name4 and name6 map a lower-case fully qualified name to its
	// addresses, in the order written.
	name4 map[string][]net.IP
	name6 map[string][]net.IP
	// addr maps an address (IPv4-mapped IPv6 as IPv4, no zone) to the
	// names written for it, in order.
	addr map[netipKey][]string
}

func newHostMap() *hostMap {
	return &hostMap{
		name4: map[string][]net.IP{},
		name6: map[string][]net.IP{},
		addr:  map[netipKey][]string{},
	}
}

// Len is the number of addresses and reverse names: CoreDNS's count for
// coredns_hosts_entries.
func (m *hostMap) Len() int {
	n := 0
	for _, v := range m.name4 {
		n += len(v)
	}
	for _, v := range m.name6 {
		n += len(v)
	}
	for _, v := range m.addr {
		n += len(v)
	}
	return n
}

// Hostsfile is the data of a hosts plugin: the file's entries (reloaded
// when the file changes) and the inline ones from the Corefile.
type Hostsfile struct {
	// Origins are the zones served; names outside them are not loaded.
	Origins []string

	path    string
	options options
	inline  *hostMap
	hmap    atomic.Pointer[hostMap]

	readMu sync.Mutex // one reader of the file at a time
	mtime  time.Time
	size   int64

	metrics *metrics
	logger  *slog.Logger
}

func (h *Hostsfile) fileMap() *hostMap {
	if m := h.hmap.Load(); m != nil {
		return m
	}
	return emptyMap
}

var emptyMap = newHostMap()

// readHosts reads the file again when its modification time or size
// changed since the last read. A file that cannot be opened keeps the
// entries read last (CoreDNS: "Should the file be deleted, any inlined
// content will continue to be served").
func (h *Hostsfile) readHosts() {
	h.readMu.Lock()
	defer h.readMu.Unlock()
	file, err := os.Open(h.path)
	if err != nil {
		return
	}
	defer file.Close()
	stat, err := file.Stat()
	if err != nil {
		return
	}
	if h.mtime.Equal(stat.ModTime()) && h.size == stat.Size() {
		return
	}
	m := h.parse(file)
	h.logger.Debug("hosts: parsed hosts file", "file", h.path, "entries", m.Len())
	h.hmap.Store(m)
	h.mtime = stat.ModTime()
	h.size = stat.Size()
	h.metrics.entries.WithLabelValues(h.path).Set(float64(h.inline.Len() + m.Len()))
	h.metrics.reloadTime.Set(float64(stat.ModTime().UnixNano()) / 1e9)
}

func (h *Hostsfile) initInline(lines []string) {
	if len(lines) == 0 {
		return
	}
	h.inline = h.parse(strings.NewReader(strings.Join(lines, "\n")))
}

// parse reads hosts(5) lines: "IP_address canonical_hostname [aliases...]",
// "#" starting a comment. Lines that do not start with an address, and
// names outside Origins, are skipped.
func (h *Hostsfile) parse(r io.Reader) *hostMap {
	m := newHostMap()
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		line := scanner.Bytes()
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		addr := parseIP(string(f[0]))
		if addr == nil {
			continue
		}
		v4 := addr.To4() != nil
		if v4 {
			addr = addr.To4()
		}
		key := keyOf(addr)
		for _, field := range f[1:] {
			name := strings.ToLower(fqdn(string(field)))
			if plugin.LongestZone(h.Origins, name) == "" {
				continue
			}
			if v4 {
				m.name4[name] = append(m.name4[name], addr)
			} else {
				m.name6[name] = append(m.name6[name], addr)
			}
			if !h.options.autoReverse {
				continue
			}
			m.addr[key] = append(m.addr[key], name)
		}
	}
	return m
}

func fqdn(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// parseIP discards an IPv6 zone before net.ParseIP.
func parseIP(addr string) net.IP {
	if i := strings.IndexByte(addr, '%'); i >= 0 {
		addr = addr[:i]
	}
	return net.ParseIP(addr)
}

// lookupV4 returns the IPv4 addresses of host from the file, then from
// the inline lines. The slices are shared: callers must not change them.
func (h *Hostsfile) lookupV4(host string) (file, inline []net.IP) {
	return h.fileMap().name4[host], h.inline.name4[host]
}

func (h *Hostsfile) lookupV6(host string) (file, inline []net.IP) {
	return h.fileMap().name6[host], h.inline.name6[host]
}

// LookupStaticHostV4 returns the IPv4 addresses of host (any case).
func (h *Hostsfile) LookupStaticHostV4(host string) []net.IP {
	a, b := h.lookupV4(strings.ToLower(host))
	return appendCopy(a, b)
}

// LookupStaticHostV6 returns the IPv6 addresses of host (any case).
func (h *Hostsfile) LookupStaticHostV6(host string) []net.IP {
	a, b := h.lookupV6(strings.ToLower(host))
	return appendCopy(a, b)
}

// LookupStaticAddr returns the names written for the address addr.
func (h *Hostsfile) LookupStaticAddr(addr string) []string {
	ip := parseIP(addr)
	if ip == nil {
		return nil
	}
	return h.namesOf(keyOf(ip))
}

func (h *Hostsfile) namesOf(k netipKey) []string {
	a, b := h.fileMap().addr[k], h.inline.addr[k]
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	out := make([]string, 0, len(a)+len(b))
	out = append(out, a...)
	return append(out, b...)
}

func appendCopy(a, b []net.IP) []net.IP {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make([]net.IP, 0, len(a)+len(b))
	out = append(out, a...)
	return append(out, b...)
}
