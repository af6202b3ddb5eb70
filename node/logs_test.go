package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogs(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	// Each run prints its run number (kept in a file), a line on stderr,
	// four on stdout (later: the two streams are copied apart, so their
	// relative order is only known across a pause), an unfinished line,
	// then waits to be told to exit.
	dir := t.TempDir()
	counter, release := filepath.Join(dir, "runs"), filepath.Join(dir, "release")
	script := `n=$(( $(cat ` + counter + ` 2>/dev/null || echo 0) + 1 )); echo $n > ` + counter + `
echo "run $n to stderr" >&2
sleep 0.3
for i in 1 2 3 4; do echo "run $n line $i"; done
printf 'no newline'
while [ ! -e ` + release + `-$n ]; do sleep 0.05; done
exit 1`
	p := shPod("logs", script)
	h.createPod(p)
	h.waitLog("logs", "", "run 1 line 4", 10*time.Second)

	// As with containerd, an unfinished line is written once it ends or
	// the output does.
	all := h.logs("logs", LogOptions{})
	want := "run 1 to stderr\nrun 1 line 1\nrun 1 line 2\nrun 1 line 3\nrun 1 line 4\n"
	if all != want {
		t.Errorf("logs = %q, want %q", all, want)
	}
	two := int64(2)
	if got := h.logs("logs", LogOptions{TailLines: &two}); got != "run 1 line 3\nrun 1 line 4\n" {
		t.Errorf("tail 2 = %q", got)
	}
	withTS := h.logs("logs", LogOptions{Timestamps: true})
	first, _, _ := strings.Cut(withTS, "\n")
	ts, text, _ := strings.Cut(first, " ")
	if when, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(when) > time.Minute || text != "run 1 to stderr" {
		t.Errorf("timestamped line %q: %v", first, err)
	}
	// There is no previous instance yet: upstream's error.
	var b strings.Builder
	err := h.node.StreamLogs(context.Background(), "default", "logs", LogOptions{Previous: true}, &b)
	if !apierrors.IsBadRequest(err) || err.Error() != `previous terminated container "c" in pod "logs" not found` {
		t.Errorf("previous before a restart: %v", err)
	}

	// Follow the current instance; a restart ends the follow.
	var followed syncBuffer
	followDone := make(chan error, 1)
	go func() {
		followDone <- h.node.StreamLogs(context.Background(), "default", "logs", LogOptions{Follow: true}, &followed)
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-followDone:
		t.Fatalf("follow returned while the container runs: %v", err)
	default:
	}
	if err := os.WriteFile(release+"-1", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-followDone:
		if err != nil {
			t.Errorf("follow: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end when the container exited")
	}
	if followed.String() != want+"no newline\n" {
		t.Errorf("followed %q", followed.String())
	}

	// After the restart: current is run 2, previous is run 1.
	h.waitLog("logs", "c", "run 2 line 4", 10*time.Second)
	if prev := h.logs("logs", LogOptions{Previous: true}); prev != want+"no newline\n" {
		t.Errorf("previous = %q, want run 1's output", prev)
	}
	if cur := h.logs("logs", LogOptions{}); cur != strings.ReplaceAll(want, "run 1", "run 2") {
		t.Errorf("current = %q, want run 2's output", cur)
	}
	// Only the current and the previous instance's logs are kept.
	if err := os.WriteFile(release+"-2", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.waitLog("logs", "c", "run 3 line 4", 15*time.Second)
	pod := h.pod("logs")
	files, _ := filepath.Glob(filepath.Join(h.dir, "pods", "default_logs_"+string(pod.UID), "c", "*.log"))
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	if strings.Join(names, ",") != "1.log,2.log" {
		t.Errorf("log files %v, want 1.log and 2.log (previous and current)", names)
	}
	// Since: nothing written in the last 0s... but one second covers the
	// newest run.
	one := int64(1)
	time.Sleep(1100 * time.Millisecond)
	if got := h.logs("logs", LogOptions{SinceSeconds: &one}); got != "" {
		t.Errorf("since 1s after the output stopped = %q, want nothing", got)
	}
	if err := os.WriteFile(release+"-3", nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStreamLogsErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "two"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrInt64(2),
			InitContainers:                []corev1.Container{{Name: "setup", Image: "x", Command: []string{"true"}}},
			Containers: []corev1.Container{
				{Name: "a", Image: "x", Command: []string{"sleep", "60"}},
				{Name: "b", Image: "x", Command: []string{"sleep", "60"}},
			},
		},
	}
	h.createPod(p)
	h.waitPod("two", 10*time.Second, "running", running("b"))
	var b strings.Builder
	for _, tc := range []struct {
		pod  string
		opts LogOptions
		is   func(error) bool
		msg  string
	}{
		{"nope", LogOptions{}, apierrors.IsNotFound, `pods "nope" not found`},
		// The API server: "a container name must be specified for pod %s,
		// choose one of: [%s]" (and the init containers).
		{"two", LogOptions{}, apierrors.IsBadRequest, "a container name must be specified for pod two, choose one of: [a b] or one of the init containers: [setup]"},
		{"two", LogOptions{Container: "zzz"}, apierrors.IsBadRequest, "container zzz is not valid for pod two"},
		{"two", LogOptions{Container: "a", Previous: true}, apierrors.IsBadRequest, `previous terminated container "a" in pod "two" not found`},
	} {
		err := h.node.StreamLogs(context.Background(), "default", tc.pod, tc.opts, &b)
		if err == nil || !tc.is(err) || err.Error() != tc.msg {
			t.Errorf("StreamLogs(%s, %+v) = %v, want %q", tc.pod, tc.opts, err, tc.msg)
		}
	}
	// The init container's log is there.
	if err := h.node.StreamLogs(context.Background(), "default", "two", LogOptions{Container: "setup"}, &b); err != nil {
		t.Errorf("init container log: %v", err)
	}
}

func TestParseLogLineAndTail(t *testing.T) {
	for _, tc := range []struct {
		line    string
		ok      bool
		stream  string
		partial bool
		text    string
	}{
		{"2024-01-02T03:04:05.123456789Z stdout F hello world", true, "stdout", false, "hello world"},
		{"2024-01-02T03:04:05Z stderr P part", true, "stderr", true, "part"},
		{"2024-01-02T03:04:05Z stdout F ", true, "stdout", false, ""},
		{"not a time stdout F x", false, "", false, ""},
		{"2024-01-02T03:04:05Z", false, "", false, ""},
	} {
		l, ok := parseLogLine([]byte(tc.line))
		if ok != tc.ok || (ok && (l.stream != tc.stream || l.partial != tc.partial || string(l.text) != tc.text)) {
			t.Errorf("parseLogLine(%q) = %+v %v", tc.line, l, ok)
		}
	}
	// Partial lines are joined; tail counts file lines from the end.
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	content := "2024-01-02T03:04:05Z stdout F one\n" +
		"2024-01-02T03:04:06Z stdout P tw\n" +
		"2024-01-02T03:04:06Z stdout F o\n" +
		"2024-01-02T03:04:07Z stderr F three\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tail *int64
		ts   bool
		want string
	}{
		{nil, false, "one\ntwo\nthree\n"},
		{ptrInt64(1), false, "three\n"},
		{ptrInt64(2), false, "o\nthree\n"},
		{ptrInt64(10), false, "one\ntwo\nthree\n"},
		{ptrInt64(0), false, ""},
		{nil, true, "2024-01-02T03:04:05Z one\n2024-01-02T03:04:06Z two\n2024-01-02T03:04:07Z three\n"},
	} {
		var b strings.Builder
		if err := streamLogFile(context.Background(), path, LogOptions{TailLines: tc.tail, Timestamps: tc.ts}, nil, &b); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("tail %v timestamps %v: %q, want %q", tc.tail, tc.ts, b.String(), tc.want)
		}
	}
}
