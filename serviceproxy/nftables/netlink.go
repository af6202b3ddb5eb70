package nftables

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The apply path: a transaction becomes one netlink batch through
// github.com/google/nftables (measured against sigs.k8s.io/knftables,
// which runs `nft -f`: see doc.go). The kernel applies a batch as one
// transaction, all or nothing.

// setIDs gives sets created in a batch an ID (rules refer to new sets by
// ID). google/nftables' own counter is a package variable without a lock.
var setIDs atomic.Uint32

func nextSetID() uint32 {
	for {
		if id := setIDs.Add(1); id != 0 {
			return id
		}
	}
}

// sockBuf is the socket buffer for one batch: the kernel takes a batch in
// a single message, 10,000 services x 10 endpoints is about 12 MB.
const sockBuf = 128 << 20

func dial(nsFd int) (*gnft.Conn, error) {
	opts := []gnft.ConnOption{gnft.WithSockOptions(func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			// FORCE variants exceed net.core.[rw]mem_max (we are root).
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sockBuf); serr != nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, sockBuf)
			}
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
			}
		}); err != nil {
			return err
		}
		return serr
	})}
	if nsFd > 0 {
		opts = append(opts, gnft.WithNetNSFd(nsFd))
	}
	return gnft.New(opts...)
}

var hooks = map[string]*gnft.ChainHook{
	"prerouting":  gnft.ChainHookPrerouting,
	"input":       gnft.ChainHookInput,
	"forward":     gnft.ChainHookForward,
	"output":      gnft.ChainHookOutput,
	"postrouting": gnft.ChainHookPostrouting,
}

// netlinkBatch encodes a transaction on a connection (not yet flushed).
type netlinkBatch struct {
	c      *gnft.Conn
	table  string
	strs   *strTable
	tables map[*family]*gnft.Table
	sets   map[*family]map[string]*gnft.Set // created or used in this batch
}

func encodeTx(c *gnft.Conn, t *transaction) error {
	b := &netlinkBatch{c: c, table: t.table, strs: t.strs, tables: map[*family]*gnft.Table{}, sets: map[*family]map[string]*gnft.Set{}}
	for i := range t.ops {
		if err := b.op(&t.ops[i]); err != nil {
			return err
		}
	}
	return nil
}

func (b *netlinkBatch) tab(f *family) *gnft.Table {
	t := b.tables[f]
	if t == nil {
		t = &gnft.Table{Family: f.table, Name: b.table}
		b.tables[f] = t
	}
	return t
}

func (b *netlinkBatch) chain(f *family, d *chainDef) *gnft.Chain {
	c := &gnft.Chain{Name: d.name, Table: b.tab(f)}
	if d.base() {
		c.Hooknum = hooks[d.hook]
		c.Priority = gnft.ChainPriorityRef(gnft.ChainPriority(d.priority))
		c.Type = gnft.ChainType(d.typ)
	}
	return c
}

// set returns the set object for d (the one created in this batch, if any).
func (b *netlinkBatch) set(f *family, d *setDef) (*gnft.Set, error) {
	m := b.sets[f]
	if m == nil {
		m = map[string]*gnft.Set{}
		b.sets[f] = m
	}
	if s := m[d.name]; s != nil {
		return s, nil
	}
	s := &gnft.Set{Table: b.tab(f), Name: d.name, Comment: d.comment, IsMap: d.isMap(), Interval: d.interval()}
	if len(d.key) > 0 {
		kt, err := concatType(f, d.key)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", d.name, err)
		}
		s.KeyType = kt
		// NFT_SET_CONCAT (and with it the pipapo backend) only for
		// interval concatenations, as nft does: the others stay hashes.
		s.Concatenation = len(d.key) > 1 && d.interval()
	}
	switch {
	case d.vmap:
		s.DataType = gnft.TypeVerdict
	case len(d.data) > 0:
		dt, err := concatType(f, d.data)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", d.name, err)
		}
		s.DataType = dt
	}
	if d.hasFlag("dynamic") {
		s.Dynamic = true
	}
	if d.hasFlag("timeout") || d.timeout > 0 {
		s.HasTimeout = true
		s.Timeout = d.timeout
	}
	m[d.name] = s
	return s, nil
}

func concatType(f *family, fields []fieldKind) (gnft.SetDatatype, error) {
	if len(fields) == 1 {
		return fields[0].datatype(f), nil
	}
	ts := make([]gnft.SetDatatype, len(fields))
	for i, k := range fields {
		ts[i] = k.datatype(f)
	}
	return gnft.ConcatSetType(ts...)
}

func (b *netlinkBatch) op(op *txOp) error {
	f := op.f
	switch op.kind {
	case opAddTable:
		b.c.AddTable(b.tab(f))
	case opDelTable:
		b.c.DelTable(b.tab(f))
		delete(b.sets, f)
	case opAddChain:
		b.c.AddChain(b.chain(f, op.chain))
	case opFlushChain:
		b.c.FlushChain(b.chain(f, op.chain))
	case opDelChain:
		b.c.DelChain(b.chain(f, op.chain))
	case opAddSet:
		s, err := b.set(f, op.set)
		if err != nil {
			return err
		}
		s.ID = nextSetID()
		if err := b.c.AddSet(s, nil); err != nil {
			return fmt.Errorf("set %s: %w", op.set.name, err)
		}
	case opFlushSet:
		s, err := b.set(f, op.set)
		if err != nil {
			return err
		}
		b.c.FlushSet(s)
	case opDelSet:
		b.c.DelSet(&gnft.Set{Table: b.tab(f), Name: op.set.name})
		if m := b.sets[f]; m != nil {
			delete(m, op.set.name)
		}
	case opAddRules:
		ch := b.chain(f, op.chain)
		for i := range op.rules {
			if err := b.rule(f, ch, &op.rules[i]); err != nil {
				return fmt.Errorf("chain %s: %w", op.chain.name, err)
			}
		}
	case opAddElems, opDelElems:
		s, err := b.set(f, op.set)
		if err != nil {
			return err
		}
		for start := 0; start < len(op.elems); start += elementsPerLine {
			end := min(start+elementsPerLine, len(op.elems))
			elems := make([]gnft.SetElement, 0, 2*(end-start))
			for _, e := range op.elems[start:end] {
				elems = appendElem(elems, f, op.set, e, op.kind == opDelElems, b.strs)
			}
			if op.kind == opAddElems {
				err = b.c.SetAddElements(s, elems)
			} else {
				err = b.c.SetDeleteElements(s, elems)
			}
			if err != nil {
				return fmt.Errorf("set %s: %w", op.set.name, err)
			}
		}
	}
	return nil
}

func (b *netlinkBatch) rule(f *family, ch *gnft.Chain, r *rule) error {
	eb := &exprBuilder{f: f, setID: func(name string) uint32 {
		if s := b.sets[f][name]; s != nil {
			return s.ID
		}
		return 0
	}}
	for _, s := range r.stmts {
		s.exprs(eb)
	}
	nr := &gnft.Rule{Table: b.tab(f), Chain: ch, Exprs: eb.out}
	if r.comment != "" {
		nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.comment)
	}
	b.c.AddRule(nr)
	return nil
}

// appendElem encodes one element. Interval sets hold ranges: the pipapo
// backend (concatenations) takes the inclusive end as KEY_END; the rbtree
// (one field) takes a start element and an end element one past the range.
func appendElem(out []gnft.SetElement, f *family, d *setDef, e txElem, del bool, strs *strTable) []gnft.SetElement {
	if d.interval() && len(d.key) == 1 {
		p := e.key.prefix()
		out = append(out, gnft.SetElement{Key: p.Masked().Addr().AsSlice()})
		if next := lastAddr(p).Next(); next.IsValid() {
			out = append(out, gnft.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
		return out
	}
	el := gnft.SetElement{Key: d.keyBytes(f, e.key, false)}
	if d.interval() {
		el.KeyEnd = d.keyBytes(f, e.key, true)
	}
	if !del {
		el.Comment = strs.str(e.val.comment)
		switch {
		case d.vmap:
			el.VerdictData = verdictExpr(e.val.code, strs.str(e.val.chain))
		case len(d.data) > 0:
			el.Val = d.valBytes(f, e.val)
		}
	}
	return append(out, el)
}

func verdictExpr(code uint8, chain string) *expr.Verdict {
	switch code {
	case vGoto:
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
	case vJump:
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain}
	case vAccept:
		return &expr.Verdict{Kind: expr.VerdictAccept}
	case vReturn:
		return &expr.Verdict{Kind: expr.VerdictReturn}
	}
	return &expr.Verdict{Kind: expr.VerdictDrop}
}

// applyNetlink sends a transaction as one batch.
func applyNetlink(nsFd int, t *transaction) error {
	if t.empty() {
		return nil
	}
	c, err := dial(nsFd)
	if err != nil {
		return fmt.Errorf("nftables netlink: %w", err)
	}
	if err := encodeTx(c, t); err != nil {
		return fmt.Errorf("nftables: encoding the transaction: %w", err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction (%s): %w", t.summary(), err)
	}
	return nil
}

// listTable returns the chains and (non-anonymous) sets the kernel holds
// in our table of family f; found is false when the table does not exist.
func listTable(nsFd int, f *family, table string) (chains, sets []string, found bool, err error) {
	c, err := dial(nsFd)
	if err != nil {
		return nil, nil, false, err
	}
	tabs, err := c.ListTablesOfFamily(f.table)
	if err != nil {
		return nil, nil, false, fmt.Errorf("listing %s tables: %w", f.name, err)
	}
	for _, t := range tabs {
		if t.Name == table {
			found = true
		}
	}
	if !found {
		return nil, nil, false, nil
	}
	cs, err := c.ListChainsOfTableFamily(f.table)
	if err != nil {
		return nil, nil, true, fmt.Errorf("listing %s chains: %w", f.name, err)
	}
	for _, ch := range cs {
		if ch.Table != nil && ch.Table.Name == table {
			chains = append(chains, ch.Name)
		}
	}
	ss, err := c.GetSets(&gnft.Table{Family: f.table, Name: table})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return nil, nil, true, fmt.Errorf("listing %s sets: %w", f.name, err)
	}
	for _, s := range ss {
		if !s.Anonymous && !strings.HasPrefix(s.Name, "__") {
			sets = append(sets, s.Name)
		}
	}
	return chains, sets, true, nil
}

// deleteTables deletes our tables where they exist (Cleanup).
func deleteTables(nsFd int, table string) error {
	c, err := dial(nsFd)
	if err != nil {
		return err
	}
	n := 0
	for _, f := range []*family{fam4, fam6} {
		tabs, err := c.ListTablesOfFamily(f.table)
		if err != nil {
			return fmt.Errorf("listing %s tables: %w", f.name, err)
		}
		for _, t := range tabs {
			if t.Name == table {
				c.DelTable(&gnft.Table{Family: f.table, Name: table})
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	return c.Flush()
}
