package nftables

import (
	"bytes"
	"fmt"
	"slices"
)

// A transaction is an ordered list of operations on our tables. It is
// built once and then either printed as an nft script (Render, debug
// logs) or sent as one netlink batch (Sync); the kernel applies a batch
// atomically, so a failed sync leaves the previous rules in force.

type opKind uint8

const (
	opAddTable opKind = iota
	opDelTable
	opAddChain
	opFlushChain
	opDelChain
	opAddSet
	opFlushSet
	opDelSet
	opAddRules
	opAddElems
	opDelElems
)

type txElem struct {
	key elemKey
	val elemVal
}

type txOp struct {
	kind  opKind
	f     *family
	chain *chainDef
	set   *setDef
	rules []rule
	elems []txElem
}

type transaction struct {
	table string
	strs  *strTable // names in element values
	ops   []txOp
}

func (t *transaction) add(op txOp) { t.ops = append(t.ops, op) }

// empty tells whether the transaction changes nothing.
func (t *transaction) empty() bool { return len(t.ops) == 0 }

// elementsPerLine bounds the elements of one "add element" line (and of
// one netlink message: an attribute's length is 16 bits).
const elementsPerLine = 1000

// script prints the transaction as an nft script: `nft -f` of it applies
// the same change in one transaction.
func (t *transaction) script() []byte {
	var b bytes.Buffer
	for _, op := range t.ops {
		pre := op.f.name + " " + t.table
		switch op.kind {
		case opAddTable:
			b.WriteString("add table " + pre + "\n")
		case opDelTable:
			b.WriteString("delete table " + pre + "\n")
		case opAddChain:
			b.WriteString("add chain " + pre + " " + op.chain.name + op.chain.spec() + "\n")
		case opFlushChain:
			b.WriteString("flush chain " + pre + " " + op.chain.name + "\n")
		case opDelChain:
			b.WriteString("delete chain " + pre + " " + op.chain.name + "\n")
		case opAddSet:
			b.WriteString("add " + op.set.kind() + " " + pre + " " + op.set.name + " " + op.set.spec(op.f) + "\n")
		case opFlushSet:
			b.WriteString("flush " + op.set.kind() + " " + pre + " " + op.set.name + "\n")
		case opDelSet:
			b.WriteString("delete " + op.set.kind() + " " + pre + " " + op.set.name + "\n")
		case opAddRules:
			for i := range op.rules {
				b.WriteString("add rule " + pre + " " + op.chain.name + " " + op.rules[i].text(op.f) + "\n")
			}
		case opAddElems, opDelElems:
			verb := "add"
			if op.kind == opDelElems {
				verb = "delete"
			}
			elems := slices.Clone(op.elems)
			sortElems(elems)
			for start := 0; start < len(elems); start += elementsPerLine {
				end := min(start+elementsPerLine, len(elems))
				b.WriteString(verb + " element " + pre + " " + op.set.name + " { ")
				for i, e := range elems[start:end] {
					if i > 0 {
						b.WriteString(", ")
					}
					if op.kind == opDelElems {
						b.WriteString(op.set.keyText(e.key))
					} else {
						b.WriteString(op.set.elemText(e.key, e.val, t.strs))
					}
				}
				b.WriteString(" }\n")
			}
		}
	}
	return b.Bytes()
}

// sortElems orders elements for deterministic scripts.
func sortElems(es []txElem) {
	slices.SortFunc(es, func(a, b txElem) int { return compareKeys(a.key, b.key) })
}

// summary is a short description for logs: counts by operation.
func (t *transaction) summary() string {
	var chains, rules, sets, adds, dels int
	for _, op := range t.ops {
		switch op.kind {
		case opAddChain, opFlushChain, opDelChain:
			chains++
		case opAddRules:
			rules += len(op.rules)
		case opAddSet, opDelSet, opFlushSet:
			sets++
		case opAddElems:
			adds += len(op.elems)
		case opDelElems:
			dels += len(op.elems)
		}
	}
	return fmt.Sprintf("chains=%d rules=%d sets=%d elements+=%d elements-=%d", chains, rules, sets, adds, dels)
}
