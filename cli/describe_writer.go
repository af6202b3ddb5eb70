package cli

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// describeWriter is kubectl's describe PrefixWriter over a tabwriter
// (tabbedString: min width 0, tab width 8, padding 2): each level indents
// by two spaces.
type describeWriter struct {
	buf *bytes.Buffer
	tw  *tabwriter.Writer
	now time.Time
}

const (
	level0 = iota
	level1
	level2
	level3
	level4
)

func newDescribeWriter(now time.Time) *describeWriter {
	buf := &bytes.Buffer{}
	return &describeWriter{buf: buf, tw: tabwriter.NewWriter(buf, 0, 8, 2, ' ', 0), now: now}
}

func (w *describeWriter) Write(level int, format string, a ...any) {
	if level > 0 {
		io.WriteString(w.tw, strings.Repeat("  ", level))
	}
	fmt.Fprintf(w.tw, format, a...)
}

func (w *describeWriter) WriteLine(a ...any) { fmt.Fprintln(w.tw, a...) }

func (w *describeWriter) Flush() { w.tw.Flush() }

func (w *describeWriter) String() string {
	w.tw.Flush()
	return w.buf.String()
}

// printLabelsMultiline prints "Title:  k=v" then one label a line,
// sorted, or <none>.
func printLabelsMultiline(w *describeWriter, title string, m map[string]string) {
	printLabelsMultilineWithIndent(w, "", title, "\t", m)
}

func printLabelsMultilineWithIndent(w *describeWriter, initialIndent, title, innerIndent string, m map[string]string) {
	w.Write(level0, "%s%s:%s", initialIndent, title, innerIndent)
	if len(m) == 0 {
		w.WriteLine("<none>")
		return
	}
	for i, key := range sortedKeys(m) {
		if i != 0 {
			w.Write(level0, "%s", initialIndent)
			w.Write(level0, "%s", innerIndent)
		}
		w.Write(level0, "%s=%s\n", key, m[key])
	}
}

// skipAnnotations are hidden from describe, as kubectl hides them.
var skipAnnotations = sets.New("kubectl.kubernetes.io/last-applied-configuration")

const maxAnnotationLen = 140

func printAnnotationsMultiline(w *describeWriter, title string, annotations map[string]string) {
	w.Write(level0, "%s:\t", title)
	var keys []string
	for _, k := range sortedKeys(annotations) {
		if !skipAnnotations.Has(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		w.WriteLine("<none>")
		return
	}
	indent := "\t"
	for i, key := range keys {
		if i != 0 {
			w.Write(level0, "%s", indent)
		}
		value := strings.TrimSuffix(annotations[key], "\n")
		if len(value)+len(key)+2 > maxAnnotationLen || strings.Contains(value, "\n") {
			w.Write(level0, "%s:\n", key)
			for _, s := range strings.Split(value, "\n") {
				if len(s) > maxAnnotationLen-2 {
					s = s[:maxAnnotationLen-2] + "..."
				}
				w.Write(level0, "%s  %s\n", indent, s)
			}
		} else {
			w.Write(level0, "%s: %s\n", key, value)
		}
	}
}

// eventTime orders events as kubectl's SortableEvents: by last
// occurrence.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// describeEvents is kubectl's DescribeEvents: a Type/Reason/Age/From/
// Message table where a repeated event reads "12s (x3 over 2m)".
func describeEvents(events []corev1.Event, w *describeWriter) {
	if len(events) == 0 {
		w.Write(level0, "Events:\t<none>\n")
		return
	}
	w.Flush()
	sort.SliceStable(events, func(i, j int) bool { return eventTime(&events[i]).Before(eventTime(&events[j])) })
	w.Write(level0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
	w.Write(level1, "----\t------\t----\t----\t-------\n")
	for i := range events {
		e := &events[i]
		first := translateMicroTimestampSince(e.EventTime, w.now)
		if e.EventTime.IsZero() {
			first = translateTimestampSince(e.FirstTimestamp, w.now)
		}
		var interval string
		switch {
		case e.Series != nil:
			interval = fmt.Sprintf("%s (x%d over %s)", translateMicroTimestampSince(e.Series.LastObservedTime, w.now), e.Series.Count, first)
		case e.Count > 1:
			interval = fmt.Sprintf("%s (x%d over %s)", translateTimestampSince(e.LastTimestamp, w.now), e.Count, first)
		default:
			interval = first
		}
		source := e.Source.Component
		if source == "" {
			source = e.ReportingController
		}
		w.Write(level1, "%v\t%v\t%s\t%v\t%v\n", e.Type, e.Reason, interval, source, strings.TrimSpace(e.Message))
	}
}

func printBool(v bool) string {
	if v {
		return "True"
	}
	return "False"
}

func stringOrNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}
