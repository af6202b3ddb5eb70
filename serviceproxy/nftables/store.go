package nftables

import (
	"cmp"
	"slices"
	"time"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// famStore is one family's desired table, built from the service ports'
// contributions, together with what the kernel holds (as far as our own
// successful transactions tell). A full sync builds a new store from all
// service ports; an incremental sync swaps the contributions of the
// changed ports in the current store. Either way the desired content is a
// function of the contributions only (elements that several ports want
// take the value of the port that sorts first), so the incremental result
// equals the full one.
type famStore struct {
	f      *family
	g      *globals
	strs   *strTable
	static [numStatic]*setState
	sets   map[string]*setState
	chains map[string]*chainState
	svcs   map[serviceproxy.ServicePortName]*contrib
	ids    map[serviceproxy.ServicePortName]uint32
	names  []serviceproxy.ServicePortName // by id; names[0] is the skeleton

	dirtySets   map[*setState]bool // sets whose elements (or existence) changed
	dirtyChains map[*chainState]bool
	// building: a full sync builds the store; no element is tracked as
	// dirty (the transaction writes them all).
	building bool
}

type ownerVal struct {
	id  uint32
	val elemVal
}

// entry is one element: its owner (the first one; others, rare, are in
// setState.more) and what the kernel holds. It holds no pointers.
type entry struct {
	owner   uint32 // 0 with owners == 0
	owners  uint32 // how many ports want it
	val     elemVal
	applied elemVal
	present bool // in the kernel
}

type setState struct {
	def    *setDef
	static bool
	refs   int // affinity sets: how many ports want it
	elems  map[elemKey]entry
	more   map[elemKey][]ownerVal // owners after the first
	dirty  map[elemKey]struct{}
	exists bool // in the kernel
}

type chainState struct {
	def        chainDef
	static     bool
	refs       int
	rules      []rule
	applied    []rule // what the kernel holds (nil after a flush)
	exists     bool
	staleSince time.Time // flushed and unreferenced since then
}

func newFamStore(f *family, g *globals, strs *strTable) *famStore {
	s := &famStore{
		f: f, g: g, strs: strs,
		sets:        map[string]*setState{},
		chains:      map[string]*chainState{},
		svcs:        map[serviceproxy.ServicePortName]*contrib{},
		ids:         map[serviceproxy.ServicePortName]uint32{},
		names:       []serviceproxy.ServicePortName{{}},
		dirtySets:   map[*setState]bool{},
		dirtyChains: map[*chainState]bool{},
	}
	for i, d := range staticSets(f) {
		st := &setState{def: d, static: true, elems: map[elemKey]entry{}, more: map[elemKey][]ownerVal{}, dirty: map[elemKey]struct{}{}}
		s.sets[d.name] = st
		s.static[i] = st
		s.dirtySets[st] = true
	}
	for name, rules := range g.skeletonChains(f) {
		cd := chainDef{name: name}
		for _, bc := range baseChains {
			if bc.name == name {
				cd = bc
			}
		}
		cs := &chainState{def: cd, static: true, rules: rules}
		s.chains[name] = cs
		s.dirtyChains[cs] = true
	}
	for _, e := range g.skeletonElems() {
		s.addElem(0, e)
	}
	return s
}

// presize sizes the element maps of a store about to be built for n
// service ports with eps endpoints in all.
func (s *famStore) presize(n, eps int) {
	for i, hint := range map[uint8]int{iClusterIPs: n, iServiceIPs: n, iSvcEndpoints: eps, iHairpin: eps} {
		s.static[i].elems = make(map[elemKey]entry, hint)
	}
	s.svcs = make(map[serviceproxy.ServicePortName]*contrib, n)
	s.ids = make(map[serviceproxy.ServicePortName]uint32, n)
}

func (s *famStore) id(n serviceproxy.ServicePortName) uint32 {
	if id, ok := s.ids[n]; ok {
		return id
	}
	id := uint32(len(s.names))
	s.ids[n] = id
	s.names = append(s.names, n)
	return id
}

func (s *famStore) addElem(id uint32, e celem) {
	st := s.static[e.set]
	en, ok := st.elems[e.key]
	switch {
	case !ok || en.owners == 0:
		en.owner, en.owners, en.val = id, 1, e.val
	default:
		en.owners++
		st.more[e.key] = append(st.more[e.key], ownerVal{id: id, val: e.val})
	}
	st.elems[e.key] = en
	if !s.building {
		st.dirty[e.key] = struct{}{}
		s.dirtySets[st] = true
	}
}

func (s *famStore) removeElem(id uint32, e celem) {
	st := s.static[e.set]
	en, ok := st.elems[e.key]
	if !ok || en.owners == 0 {
		return
	}
	more := st.more[e.key]
	if en.owner == id {
		if len(more) > 0 {
			en.owner, en.val = more[0].id, more[0].val
			more = more[1:]
		} else {
			en.owner = 0
		}
		en.owners--
	} else {
		for i, o := range more {
			if o.id == id {
				more = append(more[:i:i], more[i+1:]...)
				en.owners--
				break
			}
		}
	}
	if len(more) == 0 {
		delete(st.more, e.key)
	} else {
		st.more[e.key] = more
	}
	if en.owners == 0 && !en.present {
		delete(st.elems, e.key)
		delete(st.dirty, e.key)
		return
	}
	st.elems[e.key] = en
	st.dirty[e.key] = struct{}{}
	s.dirtySets[st] = true
}

// want is an element's desired value: the one of the port that sorts
// first.
func (s *famStore) want(st *setState, k elemKey, en entry) (elemVal, bool) {
	switch en.owners {
	case 0:
		return elemVal{}, false
	case 1:
		return en.val, true
	}
	best := ownerVal{id: en.owner, val: en.val}
	for _, o := range st.more[k] {
		if comparePortNames(s.names[o.id], s.names[best.id]) < 0 {
			best = o
		}
	}
	return best.val, true
}

func comparePortNames(a, b serviceproxy.ServicePortName) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
}

// setService replaces a port's contribution (nil removes the port).
func (s *famStore) setService(n serviceproxy.ServicePortName, c *contrib) {
	old := s.svcs[n]
	if old == nil && c == nil {
		return
	}
	id := s.id(n)
	if old != nil {
		for _, e := range old.elems {
			s.removeElem(id, e)
		}
		for _, ch := range old.chains {
			cs := s.chains[ch.name]
			if cs == nil || cs.static {
				continue
			}
			cs.refs--
			s.dirtyChains[cs] = true
		}
		for _, d := range old.sets {
			st := s.sets[d.name]
			if st == nil || st.static {
				continue
			}
			st.refs--
			s.dirtySets[st] = true
		}
		delete(s.svcs, n)
	}
	if c == nil {
		return
	}
	s.svcs[n] = c
	for _, d := range c.sets {
		st := s.sets[d.name]
		if st == nil {
			st = &setState{def: d, elems: map[elemKey]entry{}, more: map[elemKey][]ownerVal{}, dirty: map[elemKey]struct{}{}}
			s.sets[d.name] = st
		}
		st.refs++
		s.dirtySets[st] = true
	}
	for _, ch := range c.chains {
		cs := s.chains[ch.name]
		if cs == nil {
			cs = &chainState{def: chainDef{name: ch.name}}
			s.chains[ch.name] = cs
		}
		if cs.static {
			continue
		}
		cs.refs++
		cs.rules = ch.rules
		s.dirtyChains[cs] = true
	}
	for _, e := range c.elems {
		s.addElem(id, e)
	}
}

// --- transactions ---

func sortedChains(m map[*chainState]bool) []*chainState {
	out := make([]*chainState, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *chainState) int { return chainOrder(a, b) })
	return out
}

// chainOrder puts base chains first (in baseChains order), then the rest
// by name.
func chainOrder(a, b *chainState) int {
	ia, ib := baseIndex(a.def.name), baseIndex(b.def.name)
	if ia != ib {
		return ia - ib
	}
	return cmp.Compare(a.def.name, b.def.name)
}

func baseIndex(n string) int {
	for i, bc := range baseChains {
		if bc.name == n {
			return i
		}
	}
	return len(baseChains)
}

func sortedSets(m map[string]*setState) []*setState {
	out := make([]*setState, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *setState) int { return cmp.Compare(a.def.name, b.def.name) })
	return out
}

// fullTx appends to t the operations that make the kernel table equal to
// the store, whatever it held before. fresh: the table is deleted and
// created anew (first sync; the dry run); otherwise every object is
// ensured and flushed (affinity sets keep their entries), and kernelChains
// / kernelSets (what the kernel holds now) are cleaned of objects we do
// not want.
func (s *famStore) fullTx(t *transaction, fresh bool, kernelChains, kernelSets []string, now time.Time) {
	f := s.f
	t.add(txOp{kind: opAddTable, f: f})
	if fresh {
		t.add(txOp{kind: opDelTable, f: f})
		t.add(txOp{kind: opAddTable, f: f})
	}
	sets := sortedSets(s.sets)
	for _, st := range sets {
		if !st.static && st.refs <= 0 {
			continue
		}
		t.add(txOp{kind: opAddSet, f: f, set: st.def})
		if !fresh && st.static {
			t.add(txOp{kind: opFlushSet, f: f, set: st.def})
		}
	}
	var chains []*chainState
	for _, cs := range s.chains {
		if cs.static || cs.refs > 0 {
			chains = append(chains, cs)
		}
	}
	slices.SortFunc(chains, chainOrder)
	for _, cs := range chains {
		d := cs.def
		t.add(txOp{kind: opAddChain, f: f, chain: &d})
		if !fresh {
			t.add(txOp{kind: opFlushChain, f: f, chain: &d})
		}
	}
	if !fresh {
		// Chains we no longer want: flush now, delete in a later sync
		// (kube-proxy: "with kernels before 6.2, if there is a map
		// element pointing to a chain, and you delete that map element,
		// the kernel doesn't notice until a short amount of time later
		// that the chain is now unreferenced").
		for _, name := range kernelChains {
			if cs := s.chains[name]; cs != nil && (cs.static || cs.refs > 0) {
				continue
			}
			cs := s.chains[name]
			if cs == nil {
				cs = &chainState{def: chainDef{name: name}, exists: true}
				s.chains[name] = cs
			}
			if cs.staleSince.IsZero() {
				cs.staleSince = now
			}
			d := cs.def
			t.add(txOp{kind: opFlushChain, f: f, chain: &d})
		}
	}
	for _, cs := range chains {
		if len(cs.rules) > 0 {
			d := cs.def
			t.add(txOp{kind: opAddRules, f: f, chain: &d, rules: cs.rules})
		}
	}
	for _, st := range sets {
		if !st.static && st.refs <= 0 {
			continue
		}
		elems := make([]txElem, 0, len(st.elems))
		for k, en := range st.elems {
			if v, ok := s.want(st, k, en); ok {
				elems = append(elems, txElem{key: k, val: v})
			}
		}
		if len(elems) > 0 {
			t.add(txOp{kind: opAddElems, f: f, set: st.def, elems: elems})
		}
	}
	if !fresh {
		for _, name := range kernelSets {
			if st := s.sets[name]; st != nil && (st.static || st.refs > 0) {
				continue
			}
			kind := &setDef{name: name}
			t.add(txOp{kind: opDelSet, f: f, set: kind})
		}
		s.deleteStaleChains(t, now)
	}
}

// deleteStaleChains deletes chains flushed at least a second ago.
func (s *famStore) deleteStaleChains(t *transaction, now time.Time) {
	var stale []*chainState
	for _, cs := range s.chains {
		if !cs.static && cs.refs <= 0 && cs.exists && !cs.staleSince.IsZero() && now.Sub(cs.staleSince) >= time.Second {
			stale = append(stale, cs)
		}
	}
	slices.SortFunc(stale, chainOrder)
	for _, cs := range stale {
		d := cs.def
		t.add(txOp{kind: opDelChain, f: s.f, chain: &d})
	}
}

// incrementalTx appends the operations that bring the kernel from what it
// holds (our last applied transactions) to the store, touching only what
// changed.
func (s *famStore) incrementalTx(t *transaction, now time.Time) {
	f := s.f
	chains := sortedChains(s.dirtyChains)
	var dirtySets []*setState
	for st := range s.dirtySets {
		dirtySets = append(dirtySets, st)
	}
	slices.SortFunc(dirtySets, func(a, b *setState) int { return cmp.Compare(a.def.name, b.def.name) })

	// New chains and sets first, so that rules and elements can refer to them.
	for _, cs := range chains {
		if (cs.static || cs.refs > 0) && !cs.exists {
			d := cs.def
			t.add(txOp{kind: opAddChain, f: f, chain: &d})
		}
	}
	for _, st := range dirtySets {
		if (st.static || st.refs > 0) && !st.exists {
			t.add(txOp{kind: opAddSet, f: f, set: st.def})
		}
	}
	// Flush changed and unwanted chains.
	var fill []*chainState
	for _, cs := range chains {
		want := cs.static || cs.refs > 0
		switch {
		case want && cs.exists && !rulesEqual(f, cs.applied, cs.rules):
			if len(cs.applied) > 0 {
				d := cs.def
				t.add(txOp{kind: opFlushChain, f: f, chain: &d})
			}
			fill = append(fill, cs)
		case want && !cs.exists:
			fill = append(fill, cs)
		case !want && cs.exists && len(cs.applied) > 0:
			d := cs.def
			t.add(txOp{kind: opFlushChain, f: f, chain: &d})
		}
	}
	// Element changes.
	for _, st := range dirtySets {
		if !st.static && st.refs <= 0 {
			continue
		}
		var dels, adds []txElem
		for k := range st.dirty {
			en, found := st.elems[k]
			if !found {
				continue
			}
			v, ok := s.want(st, k, en)
			if en.present && (!ok || en.applied != v) {
				dels = append(dels, txElem{key: k})
			}
			if ok && (!en.present || en.applied != v) {
				adds = append(adds, txElem{key: k, val: v})
			}
		}
		if len(dels) > 0 {
			t.add(txOp{kind: opDelElems, f: f, set: st.def, elems: dels})
		}
		if len(adds) > 0 {
			// elements may "goto" new chains, which exist already
			// (added above).
			t.add(txOp{kind: opAddElems, f: f, set: st.def, elems: adds})
		}
	}
	for _, cs := range fill {
		if len(cs.rules) > 0 {
			d := cs.def
			t.add(txOp{kind: opAddRules, f: f, chain: &d, rules: cs.rules})
		}
	}
	for _, st := range dirtySets {
		if !st.static && st.refs <= 0 && st.exists {
			t.add(txOp{kind: opDelSet, f: f, set: st.def})
		}
	}
	s.deleteStaleChains(t, now)
}

// committed records that the transaction built from the store (full or
// incremental) was applied.
func (s *famStore) committed(now time.Time) {
	for cs := range s.dirtyChains {
		want := cs.static || cs.refs > 0
		if want {
			cs.exists = true
			cs.applied = cs.rules
			cs.staleSince = time.Time{}
		} else if cs.exists {
			cs.applied = nil
			if cs.staleSince.IsZero() {
				cs.staleSince = now
			}
		}
	}
	for name, cs := range s.chains {
		if !cs.static && cs.refs <= 0 && cs.exists && !cs.staleSince.IsZero() && now.Sub(cs.staleSince) >= time.Second {
			// deleted by deleteStaleChains in this transaction
			delete(s.chains, name)
		}
	}
	for st := range s.dirtySets {
		want := st.static || st.refs > 0
		if !want {
			delete(s.sets, st.def.name)
			continue
		}
		st.exists = true
		for k := range st.dirty {
			en, found := st.elems[k]
			if !found {
				continue
			}
			if v, ok := s.want(st, k, en); ok {
				en.applied, en.present = v, true
				st.elems[k] = en
			} else {
				delete(st.elems, k)
			}
		}
		clear(st.dirty)
	}
	clear(s.dirtySets)
	clear(s.dirtyChains)
}

// committedFull records a full transaction: everything desired is in the
// kernel, nothing else is (but stale chains awaiting deletion).
func (s *famStore) committedFull(now time.Time) {
	for name, cs := range s.chains {
		if cs.static || cs.refs > 0 {
			cs.exists, cs.applied, cs.staleSince = true, cs.rules, time.Time{}
			continue
		}
		if cs.exists && !cs.staleSince.IsZero() && now.Sub(cs.staleSince) >= time.Second {
			delete(s.chains, name)
			continue
		}
		if !cs.exists {
			delete(s.chains, name)
		}
	}
	for name, st := range s.sets {
		if !st.static && st.refs <= 0 {
			delete(s.sets, name)
			continue
		}
		st.exists = true
		for k, en := range st.elems {
			if v, ok := s.want(st, k, en); ok {
				en.applied, en.present = v, true
				st.elems[k] = en
			} else {
				delete(st.elems, k)
			}
		}
		clear(st.dirty)
	}
	clear(s.dirtySets)
	clear(s.dirtyChains)
}
