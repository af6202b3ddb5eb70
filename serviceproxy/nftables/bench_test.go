package nftables

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// BenchmarkSync reports, per size, the full sync, the full resync and one
// added service (incremental) in a throwaway namespace.
func BenchmarkSync(b *testing.B) {
	needRoot(b)
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d/endpoints=10", n), func(b *testing.B) {
			var full, resync, add, render float64
			for i := 0; i < b.N; i++ {
				m, err := MeasureSync(context.Background(), n, 10)
				if err != nil {
					b.Fatal(err)
				}
				full += m.FullSync.Seconds()
				resync += m.Resync.Seconds()
				add += m.AddOne.Seconds()
				render += m.Render.Seconds()
			}
			b.ReportMetric(full/float64(b.N)*1000, "full-ms")
			b.ReportMetric(resync/float64(b.N)*1000, "resync-ms")
			b.ReportMetric(add/float64(b.N)*1000, "add-one-ms")
			b.ReportMetric(render/float64(b.N)*1000, "render-ms")
		})
	}
}

// BenchmarkApplyLibraries applies the same transactions (the first full
// sync of services x 10 endpoints, then one added service) in throwaway
// namespaces through the two libraries issue 4 names:
// github.com/google/nftables (one netlink batch, what Sync uses) and
// sigs.k8s.io/knftables (its Transaction of objects, written as text and
// run through `nft -f -`). Both start from the same transaction; what is
// timed is each library's own work: encoding and sending the batch, or
// writing the objects as text, starting nft and nft's parsing.
// TestKnftablesAppliesTheSameTable shows that both leave the same table.
func BenchmarkApplyLibraries(b *testing.B) {
	needRoot(b)
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d/endpoints=10", n), func(b *testing.B) {
			full, add := benchTransactions(BenchState(n, 10), n, 10)
			var nlFull, nlAdd, knFull, knAdd time.Duration
			for i := 0; i < b.N; i++ {
				inNetns(b, func() {
					start := time.Now()
					if err := applyNetlink(0, full); err != nil {
						b.Errorf("google/nftables, full: %v", err)
						return
					}
					nlFull += time.Since(start)
					start = time.Now()
					if err := applyNetlink(0, add); err != nil {
						b.Errorf("google/nftables, add one: %v", err)
						return
					}
					nlAdd += time.Since(start)
				})
				inNetns(b, func() {
					kn, err := knftables.New(knftables.IPv4Family, DefaultTable)
					if err != nil {
						b.Errorf("knftables.New: %v", err)
						return
					}
					ctx := context.Background()
					start := time.Now()
					if err := kn.Run(ctx, knftTransaction(kn, full)); err != nil {
						b.Errorf("knftables, full: %v", err)
						return
					}
					knFull += time.Since(start)
					start = time.Now()
					if err := kn.Run(ctx, knftTransaction(kn, add)); err != nil {
						b.Errorf("knftables, add one: %v", err)
						return
					}
					knAdd += time.Since(start)
				})
				if b.Failed() {
					return
				}
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
			b.ReportMetric(ms(nlFull), "gnft-full-ms")
			b.ReportMetric(ms(knFull), "knft-full-ms")
			b.ReportMetric(ms(nlAdd), "gnft-add-ms")
			b.ReportMetric(ms(knAdd), "knft-add-ms")
			b.Logf("\n%-34s %14s %14s %8s\n%-34s %11.1f ms %11.1f ms %7.1fx\n%-34s %11.2f ms %11.2f ms %7.1fx",
				fmt.Sprintf("%d services x 10 endpoints", n), "google/nftables", "knftables", "ratio",
				"full sync (table created)", ms(nlFull), ms(knFull), ms(knFull)/ms(nlFull),
				"one added service", ms(nlAdd), ms(knAdd), ms(knAdd)/ms(nlAdd))
		})
	}
}

// benchTransactions builds the IPv4 transactions of a first sync of st and
// of the incremental sync adding one service of eps endpoints (st has n).
func benchTransactions(st *serviceproxy.State, n, eps int) (full, add *transaction) {
	p, err := New(Config{IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	g := p.globalsFor(fam4, st)
	strs := newStrTable()
	s := buildStore(fam4, g, strs, st)
	full = &transaction{table: DefaultTable, strs: strs}
	s.fullTx(full, true, nil, nil, now)
	s.committedFull(now)
	next := &serviceproxy.State{Node: st.Node, ClusterCIDRs: st.ClusterCIDRs, Services: maps.Clone(st.Services), Endpoints: maps.Clone(st.Endpoints)}
	name := addBenchService(next, n, eps)
	s.setService(name, newBuilder(fam4, g, strs).service(name, next.Services[name], next.Endpoints[name]))
	add = &transaction{table: DefaultTable, strs: strs}
	s.incrementalTx(add, now)
	return full, add
}

// knftTransaction turns one of our transactions into knftables objects,
// operation for operation.
func knftTransaction(kn knftables.Interface, t *transaction) *knftables.Transaction {
	tx := kn.NewTransaction()
	for _, op := range t.ops {
		switch op.kind {
		case opAddTable:
			tx.Add(&knftables.Table{})
		case opDelTable:
			tx.Delete(&knftables.Table{})
		case opAddChain:
			c := &knftables.Chain{Name: op.chain.name}
			if op.chain.base() {
				c.Type = knftables.PtrTo(knftables.BaseChainType(op.chain.typ))
				c.Hook = knftables.PtrTo(knftables.BaseChainHook(op.chain.hook))
				c.Priority = knftables.PtrTo(knftables.BaseChainPriority(strconv.Itoa(int(op.chain.priority))))
			}
			tx.Add(c)
		case opFlushChain:
			tx.Flush(&knftables.Chain{Name: op.chain.name})
		case opDelChain:
			tx.Delete(&knftables.Chain{Name: op.chain.name})
		case opAddSet, opFlushSet, opDelSet:
			obj := knftSet(op.f, op.set)
			switch op.kind {
			case opAddSet:
				tx.Add(obj)
			case opFlushSet:
				tx.Flush(obj)
			default:
				tx.Delete(obj)
			}
		case opAddRules:
			for _, r := range op.rules {
				tx.Add(&knftables.Rule{Chain: op.chain.name, Rule: r.text(op.f)})
			}
		case opAddElems, opDelElems:
			for _, e := range op.elems {
				el := &knftables.Element{Key: strings.Split(op.set.keyText(e.key), " . ")}
				if op.set.isMap() {
					el.Map = op.set.name
				} else {
					el.Set = op.set.name
				}
				if op.kind == opDelElems {
					tx.Delete(el)
					continue
				}
				if c := t.strs.str(e.val.comment); c != "" {
					el.Comment = knftables.PtrTo(c)
				}
				switch {
				case op.set.vmap:
					el.Value = []string{verdictText(e.val.code, t.strs.str(e.val.chain))}
				case len(op.set.data) > 0:
					el.Value = []string{e.val.a.addr().String(), strconv.Itoa(int(e.val.port))}
				}
				tx.Add(el)
			}
		}
	}
	return tx
}

func knftSet(f *family, d *setDef) knftables.Object {
	var typ, typeof string
	if d.typeof != "" {
		typeof = d.typeof
	} else {
		parts := make([]string, len(d.key))
		for i, k := range d.key {
			parts[i] = k.typeName(f)
		}
		typ = strings.Join(parts, " . ")
		if d.vmap {
			typ += " : verdict"
		} else if len(d.data) > 0 {
			vals := make([]string, len(d.data))
			for i, k := range d.data {
				vals[i] = k.typeName(f)
			}
			typ += " : " + strings.Join(vals, " . ")
		}
	}
	var flags []knftables.SetFlag
	for _, fl := range d.flags {
		flags = append(flags, knftables.SetFlag(fl))
	}
	var timeout *time.Duration
	if d.timeout > 0 {
		timeout = knftables.PtrTo(d.timeout)
	}
	var comment *string
	if d.comment != "" {
		comment = knftables.PtrTo(d.comment)
	}
	if d.isMap() {
		return &knftables.Map{Name: d.name, Type: typ, TypeOf: typeof, Flags: flags, Timeout: timeout, Comment: comment}
	}
	return &knftables.Set{Name: d.name, Type: typ, TypeOf: typeof, Flags: flags, Timeout: timeout, Comment: comment}
}

// TestKnftablesAppliesTheSameTable: the knftables transaction of
// BenchmarkApplyLibraries, built from a first sync's transaction of
// every kind of service, leaves the table the netlink batch leaves (so
// the benchmark compares the same work).
func TestKnftablesAppliesTheSameTable(t *testing.T) {
	needRoot(t)
	st := allCases()
	p, err := New(Config{IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	strs := newStrTable()
	tx := &transaction{table: DefaultTable, strs: strs}
	buildStore(fam4, p.globalsFor(fam4, st), strs, st).fullTx(tx, true, nil, nil, now)
	var viaNetlink, viaKnft string
	inNetns(t, func() {
		if err := applyNetlink(0, tx); err != nil {
			t.Errorf("netlink: %v", err)
			return
		}
		viaNetlink = nftCmd(t, nil, "list", "ruleset")
	})
	inNetns(t, func() {
		kn, err := knftables.New(knftables.IPv4Family, DefaultTable)
		if err != nil {
			t.Errorf("knftables.New: %v", err)
			return
		}
		if err := kn.Run(context.Background(), knftTransaction(kn, tx)); err != nil {
			t.Errorf("knftables: %v", err)
			return
		}
		viaKnft = nftCmd(t, nil, "list", "ruleset")
	})
	if t.Failed() {
		return
	}
	if a, b := normalizeListing(viaNetlink), normalizeListing(viaKnft); a != b {
		t.Errorf("knftables and netlink leave different tables (- knftables, + netlink):\n%s", lineDiff(b, a))
	}
	if !strings.Contains(viaKnft, "svc-ip-3") {
		t.Errorf("the knftables listing lacks the shared chain svc-ip-3:\n%s", viaKnft)
	}
}
