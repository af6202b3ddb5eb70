package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

func spn(ns, name, port string, proto corev1.Protocol) serviceproxy.ServicePortName {
	return serviceproxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}, Port: port, Protocol: proto}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// ep is a ready endpoint; node is its node name ("" for none), local
// tells whether it is on this node.
func ep(ip string, port int32, local bool) *serviceproxy.Endpoint {
	e := &serviceproxy.Endpoint{IP: netip.MustParseAddr(ip), Port: port, Ready: true, Serving: true, IsLocal: local}
	if local {
		e.NodeName = testHostname
	}
	return e
}

// terminating is a serving, terminating endpoint (not ready).
func terminating(ip string, port int32, local bool) *serviceproxy.Endpoint {
	e := ep(ip, port, local)
	e.Ready, e.Terminating = false, true
	return e
}

// upstream's fake proxier's node name
const testHostname = "test-hostname"

func newState() *serviceproxy.State { return serviceproxy.NewState(testHostname) }

// add adds a service port with its endpoints (and marks it changed).
func add(st *serviceproxy.State, svc *serviceproxy.ServicePort, eps ...*serviceproxy.Endpoint) {
	st.Put(svc, eps...)
}

func boolp(b bool) *bool { return &b }

// newTestProxier is a proxier whose kernel is fake (for the parts the
// tests do not run for real) and whose node addresses are hostAddrs.
func newTestProxier(t testing.TB, cfg Config, k *fakeKernel, hostAddrs ...string) *Proxier {
	t.Helper()
	if cfg.RandomFully == nil {
		// upstream's fake iptables has no --random-fully
		cfg.RandomFully = boolp(false)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ha := addrs(hostAddrs...)
	p.hostAddrs = func() ([]netip.Addr, error) { return ha, nil }
	p.tools = newFakeTools(t)
	if k != nil {
		k.hostAddrs = ha
		p.openKernel = func() (kernel, error) { return k, nil }
		p.openLinks = p.openKernel
	} else {
		p.openKernel = func() (kernel, error) { return nil, fmt.Errorf("%w (test: no kernel)", ErrNoIPVS) }
		p.openLinks = func() (kernel, error) { return nil, errors.New("test: no kernel") }
	}
	return p
}

// sections splits Render's output into its sections, by heading.
func sections(t testing.TB, out []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	cur := ""
	for _, line := range strings.SplitAfter(string(out), "\n") {
		if strings.HasPrefix(line, "# ") && (strings.HasPrefix(line, "# ipvsadm") || strings.HasPrefix(line, "# ipset") || strings.Contains(line, "tables-restore")) {
			cur = strings.TrimSpace(line[2:])
			got[cur] += ""
			continue
		}
		if cur == "" {
			t.Fatalf("output before the first section: %q", line)
		}
		got[cur] += line
	}
	return got
}

// parsedSets is the content of ipset restore input or "ipset save"
// output: per set, its type, family and members.
type parsedSet struct {
	setType, family string
	members         map[string]bool
}

// parseIPSet interprets "create", "add", "swap" and "destroy" lines.
// Members are canonical: a "/32" or "/128" net suffix is dropped (ipset
// prints host nets without it).
func parseIPSet(t testing.TB, data string) map[string]*parsedSet {
	t.Helper()
	sets := map[string]*parsedSet{}
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "create":
			s := &parsedSet{setType: f[2], members: map[string]bool{}}
			for i := 3; i+1 < len(f); i++ {
				if f[i] == "family" {
					s.family = f[i+1]
				}
			}
			sets[f[1]] = s
		case "add":
			s := sets[f[1]]
			if s == nil {
				t.Fatalf("add to unknown set: %q", line)
			}
			m := f[2]
			m = strings.TrimSuffix(strings.TrimSuffix(m, "/32"), "/128")
			s.members[m] = true
		case "swap":
			sets[f[1]], sets[f[2]] = sets[f[2]], sets[f[1]]
		case "destroy":
			delete(sets, f[1])
		case "flush":
			sets[f[1]].members = map[string]bool{}
		default:
			t.Fatalf("unknown ipset command: %q", line)
		}
	}
	return sets
}

// fakeKernel is an in-memory IPVS table and link set.
type fakeKernel struct {
	services  map[vsKey]*libipvs.Service
	dests     map[vsKey]map[rsKey]*libipvs.Destination
	links     map[string][]netip.Addr
	hostAddrs []netip.Addr
	sysctls   map[string]string
	noDummy   bool
	calls     []string // mutating calls, in order
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{
		services: map[vsKey]*libipvs.Service{},
		dests:    map[vsKey]map[rsKey]*libipvs.Destination{},
		links:    map[string][]netip.Addr{},
		sysctls:  map[string]string{},
	}
}

func (f *fakeKernel) key(s *libipvs.Service) vsKey { return vsFromKernel(s).key }

func (f *fakeKernel) GetServices() ([]*libipvs.Service, error) {
	out := make([]*libipvs.Service, 0, len(f.services))
	for _, s := range f.services {
		c := *s
		out = append(out, &c)
	}
	return out, nil
}

func (f *fakeKernel) GetDestinations(s *libipvs.Service) ([]*libipvs.Destination, error) {
	k := f.key(s)
	if f.services[k] == nil {
		return nil, unix.ESRCH
	}
	var out []*libipvs.Destination
	for _, d := range f.dests[k] {
		c := *d
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return rsKeyOf(out[i]).less(rsKeyOf(out[j])) })
	return out, nil
}

func (f *fakeKernel) NewService(s *libipvs.Service) error {
	k := f.key(s)
	if f.services[k] != nil {
		return unix.EEXIST
	}
	c := *s
	c.Flags |= flagHashed
	f.services[k] = &c
	f.dests[k] = map[rsKey]*libipvs.Destination{}
	f.calls = append(f.calls, "NewService "+k.String())
	return nil
}

func (f *fakeKernel) UpdateService(s *libipvs.Service) error {
	k := f.key(s)
	if f.services[k] == nil {
		return unix.ESRCH
	}
	c := *s
	c.Flags |= flagHashed
	f.services[k] = &c
	f.calls = append(f.calls, "UpdateService "+k.String())
	return nil
}

func (f *fakeKernel) DelService(s *libipvs.Service) error {
	k := f.key(s)
	if f.services[k] == nil {
		return unix.ESRCH
	}
	delete(f.services, k)
	delete(f.dests, k)
	f.calls = append(f.calls, "DelService "+k.String())
	return nil
}

func (f *fakeKernel) NewDestination(s *libipvs.Service, d *libipvs.Destination) error {
	k := f.key(s)
	if f.services[k] == nil {
		return unix.ESRCH
	}
	r := rsKeyOf(d)
	if f.dests[k][r] != nil {
		return unix.EEXIST
	}
	c := *d
	f.dests[k][r] = &c
	f.calls = append(f.calls, fmt.Sprintf("NewDestination %s %s w%d", k, r, d.Weight))
	return nil
}

func (f *fakeKernel) UpdateDestination(s *libipvs.Service, d *libipvs.Destination) error {
	k := f.key(s)
	r := rsKeyOf(d)
	cur := f.dests[k][r]
	if cur == nil {
		return unix.ENOENT
	}
	cur.Weight = d.Weight
	f.calls = append(f.calls, fmt.Sprintf("UpdateDestination %s %s w%d", k, r, d.Weight))
	return nil
}

func (f *fakeKernel) DelDestination(s *libipvs.Service, d *libipvs.Destination) error {
	k := f.key(s)
	r := rsKeyOf(d)
	if f.dests[k][r] == nil {
		return unix.ENOENT
	}
	delete(f.dests[k], r)
	f.calls = append(f.calls, fmt.Sprintf("DelDestination %s %s", k, r))
	return nil
}

func (f *fakeKernel) Flush() error {
	f.services = map[vsKey]*libipvs.Service{}
	f.dests = map[vsKey]map[rsKey]*libipvs.Destination{}
	f.calls = append(f.calls, "Flush")
	return nil
}

func (f *fakeKernel) SetConfig(*libipvs.Config) error { return nil }

func (f *fakeKernel) EnsureDummy(name string) error {
	if f.noDummy {
		return fmt.Errorf("%w: creating %s: operation not supported (test)", ErrNoDummy, name)
	}
	if _, ok := f.links[name]; !ok {
		f.links[name] = []netip.Addr{}
		f.calls = append(f.calls, "EnsureDummy "+name)
	}
	return nil
}

func (f *fakeKernel) DeleteDummy(name string) error {
	delete(f.links, name)
	return nil
}

func (f *fakeKernel) LinkAddrs(name string) ([]netip.Addr, error) {
	return append([]netip.Addr(nil), f.links[name]...), nil
}

func (f *fakeKernel) AddAddr(name string, a netip.Addr) error {
	l, ok := f.links[name]
	if !ok {
		return fmt.Errorf("link %s does not exist", name)
	}
	for _, x := range l {
		if x == a {
			return nil
		}
	}
	f.links[name] = append(l, a)
	return nil
}

func (f *fakeKernel) DelAddr(name string, a netip.Addr) error {
	l := f.links[name]
	for i, x := range l {
		if x == a {
			f.links[name] = append(l[:i:i], l[i+1:]...)
			return nil
		}
	}
	return nil
}

func (f *fakeKernel) HostAddrs(string) ([]netip.Addr, error) { return f.hostAddrs, nil }

func (f *fakeKernel) Sysctl(name, value string) error {
	f.sysctls[name] = value
	return nil
}

func (f *fakeKernel) Close() {}

// setConns sets the connection counts of a real server.
func (f *fakeKernel) setConns(t testing.TB, vs vsKey, rs rsKey, active int) {
	t.Helper()
	d := f.dests[vs][rs]
	if d == nil {
		t.Fatalf("no real server %s in %s", rs, vs)
	}
	d.ActiveConnections = active
}

// ipvsadm prints the fake's table as "ipvsadm -S -n".
func (f *fakeKernel) ipvsadm(t testing.TB) string {
	t.Helper()
	svcs, err := servicesFromKernel(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(renderIPVSAdm(svcs))
}

func tcpVS(ip string, port uint16) vsKey {
	return vsKey{Proto: 6, Addr: netip.MustParseAddr(ip), Port: port}
}

func rs(ip string, port uint16) rsKey { return rsKey{Addr: netip.MustParseAddr(ip), Port: port} }

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// diffLines returns the lines only in want ("- ") and only in got ("+ ").
func diffLines(want, got string) string {
	wm, gm := map[string]int{}, map[string]int{}
	for _, l := range lines(want) {
		wm[l]++
	}
	for _, l := range lines(got) {
		gm[l]++
	}
	var b strings.Builder
	for _, l := range lines(want) {
		if gm[l] > 0 {
			gm[l]--
			continue
		}
		b.WriteString("- " + l + "\n")
	}
	for _, l := range lines(got) {
		if wm[l] > 0 {
			wm[l]--
			continue
		}
		b.WriteString("+ " + l + "\n")
	}
	if b.Len() == 0 {
		return "(same lines, different order)"
	}
	return b.String()
}

// fakeTools records what a sync feeds to ipset and iptables, and keeps
// the sets and jumps those inputs would leave in a kernel.
type fakeTools struct {
	t             testing.TB
	sets          map[string]*parsedSet
	ipsetInputs   []string
	restores      [2][]string // per family
	jumps         [2][]string // "-A ..." lines of the jumps inserted
	chains        [2]map[string]map[string]bool
	removed       [2][]map[string][]string
	failIPTables  bool
	failIPSet     bool
	conntrackRuns int
}

func newFakeTools(t testing.TB) *fakeTools {
	return &fakeTools{t: t, sets: map[string]*parsedSet{},
		chains: [2]map[string]map[string]bool{{}, {}}}
}

func (f *fakeTools) listSets(context.Context) (map[string]kernelSet, bool, error) {
	out := map[string]kernelSet{}
	for n, s := range f.sets {
		out[n] = kernelSet{setType: s.setType, family: s.family}
	}
	return out, false, nil
}

func (f *fakeTools) ipsetRestore(_ context.Context, data []byte) error {
	f.ipsetInputs = append(f.ipsetInputs, string(data))
	if f.failIPSet {
		return errors.New("ipset restore: exit status 1: ipset v7.17: Error in line 1: test failure")
	}
	// ipset refuses to create a set that exists and to swap or destroy
	// one that does not.
	exists := map[string]bool{}
	for n := range f.sets {
		exists[n] = true
	}
	for i, line := range strings.Split(string(data), "\n") {
		w := strings.Fields(line)
		switch {
		case len(w) > 1 && w[0] == "create":
			if exists[w[1]] {
				return fmt.Errorf("ipset restore: Error in line %d: Set cannot be created: set with the same name already exists", i+1)
			}
			exists[w[1]] = true
		case len(w) > 2 && w[0] == "swap":
			if !exists[w[1]] || !exists[w[2]] {
				return fmt.Errorf("ipset restore: Error in line %d: The set with the given name does not exist", i+1)
			}
		case len(w) > 1 && w[0] == "destroy":
			if !exists[w[1]] {
				return fmt.Errorf("ipset restore: Error in line %d: The set with the given name does not exist", i+1)
			}
			delete(exists, w[1])
		}
	}
	// Apply on a copy of the sets, as the kernel would command by
	// command.
	all := ""
	for n, s := range f.sets {
		all += "create " + n + " " + s.setType
		if s.family != "" {
			all += " family " + s.family
		}
		all += "\n"
		for m := range s.members {
			all += "add " + n + " " + m + "\n"
		}
	}
	f.sets = parseIPSet(f.t, all+string(data))
	return nil
}

func (f *fakeTools) iptablesSave(_ context.Context, ipv6 bool) ([]byte, error) {
	fi := famIndex(ipv6)
	var b strings.Builder
	for _, table := range []string{"nat", "filter"} {
		b.WriteString("*" + table + "\n")
		for c := range f.chains[fi][table] {
			b.WriteString(":" + c + " - [0:0]\n")
		}
		for _, j := range f.jumps[fi] {
			if strings.HasPrefix(j, table+" ") {
				b.WriteString(strings.TrimPrefix(j, table+" ") + "\n")
			}
		}
		b.WriteString("COMMIT\n")
	}
	return []byte(b.String()), nil
}

func (f *fakeTools) iptablesRestore(_ context.Context, data []byte, ipv6 bool) error {
	fi := famIndex(ipv6)
	f.restores[fi] = append(f.restores[fi], string(data))
	if f.failIPTables {
		return errors.New("iptables-restore: exit status 2: test failure")
	}
	table := ""
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if f.chains[fi][table] == nil {
				f.chains[fi][table] = map[string]bool{}
			}
		case strings.HasPrefix(line, ":"):
			f.chains[fi][table][strings.Fields(line)[0][1:]] = true
		case strings.HasPrefix(line, "-I "):
			f.jumps[fi] = append(f.jumps[fi], table+" -A "+line[3:])
		}
	}
	return nil
}

func (f *fakeTools) removeChains(_ context.Context, ipv6 bool, chains map[string][]string) error {
	fi := famIndex(ipv6)
	f.removed[fi] = append(f.removed[fi], chains)
	for table, list := range chains {
		for _, c := range list {
			delete(f.chains[fi][table], c)
		}
	}
	f.jumps[fi] = nil
	return nil
}

func (f *fakeTools) cleanConntrack(context.Context, *serviceproxy.State) { f.conntrackRuns++ }

// calls counts the commands run.
func (f *fakeTools) calls() int {
	return len(f.ipsetInputs) + len(f.restores[0]) + len(f.restores[1]) + len(f.removed[0]) + len(f.removed[1]) + f.conntrackRuns
}
