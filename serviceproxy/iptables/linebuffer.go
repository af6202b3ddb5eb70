package iptables

import (
	"bytes"
	"strings"
)

// lineBuffer is upstream's proxyutil.LineBuffer: words joined by spaces,
// one line per write, with a count of the lines written. A discarding
// buffer only counts (upstream's NewDiscardLineBuffer), which is how a
// partial sync computes the rules of unchanged services without writing
// them.
type lineBuffer struct {
	buf     bytes.Buffer
	lines   int
	discard bool
}

// write writes the words (and the words of every []string among them)
// separated by single spaces, then a newline.
func (l *lineBuffer) write(words ...string) {
	l.lines++
	if l.discard {
		return
	}
	for i, w := range words {
		if i > 0 {
			l.buf.WriteByte(' ')
		}
		l.buf.WriteString(w)
	}
	l.buf.WriteByte('\n')
}

// writeArgs writes the prefix words, then the words.
func (l *lineBuffer) writeArgs(prefix []string, words ...string) {
	l.lines++
	if l.discard {
		return
	}
	n := 0
	for _, w := range prefix {
		if n > 0 {
			l.buf.WriteByte(' ')
		}
		l.buf.WriteString(w)
		n++
	}
	for _, w := range words {
		if n > 0 {
			l.buf.WriteByte(' ')
		}
		l.buf.WriteString(w)
		n++
	}
	l.buf.WriteByte('\n')
}

// writeLine writes a preformatted line.
func (l *lineBuffer) writeLine(s string) {
	l.lines++
	if l.discard {
		return
	}
	l.buf.WriteString(s)
	l.buf.WriteByte('\n')
}

func (l *lineBuffer) reset() {
	l.buf.Reset()
	l.lines = 0
}

func (l *lineBuffer) bytes() []byte { return l.buf.Bytes() }

// makeChainLine is upstream's utiliptables.MakeChainLine: the
// iptables-restore line declaring (and, with --noflush, flushing) a chain.
func makeChainLine(chain string) string {
	return ":" + chain + " - [0:0]"
}

// quote returns s as one iptables-restore word: wrapped in double quotes
// when it holds a space (upstream writes comments pre-quoted, e.g.
// `"ns/svc:p80 cluster IP"`).
func quote(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}
