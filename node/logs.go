package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/switchboard-dev/switchboard/cluster"
)

// StreamLogs writes a container's log to w, as GET .../pods/NAME/log:
// the current instance or (Previous) the one before it, the last
// TailLines lines, only lines newer than SinceSeconds, each prefixed with
// its time (Timestamps). With Follow it keeps writing until the instance
// ends (a restart ends a follow) or ctx is done. Errors are API status
// errors with the API server's and kubelet's messages: NotFound for the
// pod, BadRequest for a missing or unknown container name and for a
// previous instance that does not exist.
func (n *Node) StreamLogs(ctx context.Context, namespace, pod string, opts LogOptions, w io.Writer) error {
	p, err := cluster.Get[*corev1.Pod](n.cfg.Store, namespace, pod)
	if err != nil {
		return err
	}
	name := opts.Container
	if name == "" {
		// The API server's LogLocation.
		switch len(p.Spec.Containers) {
		case 1:
			name = p.Spec.Containers[0].Name
		case 0:
			return apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod))
		default:
			msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod, containerNames(p.Spec.Containers))
			if len(p.Spec.InitContainers) > 0 {
				msg += fmt.Sprintf(" or one of the init containers: [%s]", containerNames(p.Spec.InitContainers))
			}
			return apierrors.NewBadRequest(msg)
		}
	} else if !hasContainer(p, name) {
		return apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod))
	}

	// The container's status, from the node's live bookkeeping when the
	// pod runs here, else as stored.
	var cs corev1.ContainerStatus
	var found bool
	wk := n.workerFor(namespace, pod, p.UID)
	if wk != nil {
		wk.mu.Lock()
		snap := wk.snapshotLocked(p)
		wk.mu.Unlock()
		cs, found = findStatus(append(snap.regular, snap.init...), name)
	}
	if !found {
		cs, found = findStatus(append(append([]corev1.ContainerStatus{}, p.Status.ContainerStatuses...), p.Status.InitContainerStatuses...), name)
	}
	cid, err := logContainerID(cs, found, opts.Previous, name, pod)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	uid, cname, restart, ok := parseContainerID(cid)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q has no log here (container ID %q)", name, pod, cid))
	}
	path := n.logPath(namespace, pod, uid, cname, restart)

	// Follow only a live instance, until it ends.
	var inst *instance
	if opts.Follow && wk != nil {
		wk.mu.Lock()
		if c := wk.containers[cname]; c != nil && c.cur != nil && c.cur.id == cid && c.cur.logs != nil {
			inst = c.cur
		}
		wk.mu.Unlock()
	}
	if _, err := os.Stat(path); err != nil && inst == nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // a container that never wrote (or never ran): no lines
		}
		return apierrors.NewInternalError(err)
	}
	return streamLogFile(ctx, path, opts, inst, w)
}

func containerNames(cs []corev1.Container) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return strings.Join(names, " ")
}

func hasContainer(p *corev1.Pod, name string) bool {
	for _, list := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return true
			}
		}
	}
	for _, c := range p.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

// logContainerID is kubelet's validateContainerLogStatus: which instance's
// log a request means.
func logContainerID(cs corev1.ContainerStatus, found, previous bool, name, pod string) (string, error) {
	if !found {
		return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, pod)
	}
	last := cs.LastTerminationState.Terminated
	running, terminated, waiting := cs.State.Running, cs.State.Terminated, cs.State.Waiting
	switch {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", fmt.Errorf("previous terminated container %q in pod %q not found", name, pod)
		}
		return last.ContainerID, nil
	case running != nil:
		return cs.ContainerID, nil
	case terminated != nil:
		if terminated.ContainerID == "" {
			if last != nil && last.ContainerID != "" {
				return last.ContainerID, nil
			}
			return "", fmt.Errorf("container %q in pod %q is terminated", name, pod)
		}
		return terminated.ContainerID, nil
	case last != nil:
		if last.ContainerID == "" {
			return "", fmt.Errorf("container %q in pod %q is terminated", name, pod)
		}
		return last.ContainerID, nil
	case waiting != nil:
		return "", fmt.Errorf("container %q in pod %q is waiting to start: %v", name, pod, waiting.Reason)
	}
	return "", fmt.Errorf("container %q in pod %q is waiting to start - no logs yet", name, pod)
}

// logLine is one parsed CRI log line.
type logLine struct {
	ts      time.Time
	stream  string
	partial bool
	text    []byte
}

func parseLogLine(b []byte) (logLine, bool) {
	var l logLine
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return l, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(b[:i]))
	if err != nil {
		return l, false
	}
	rest := b[i+1:]
	j := bytes.IndexByte(rest, ' ')
	if j < 0 {
		return l, false
	}
	l.ts, l.stream = ts, string(rest[:j])
	rest = rest[j+1:]
	// The tag: F (full) or P (partial); tolerate its absence.
	if k := bytes.IndexByte(rest, ' '); k >= 0 && (string(rest[:k]) == "F" || string(rest[:k]) == "P") {
		l.partial = string(rest[:k]) == "P"
		rest = rest[k+1:]
	} else if string(rest) == "F" || string(rest) == "P" {
		l.partial = string(rest) == "P"
		rest = nil
	}
	l.text = rest
	return l, true
}

// tailOffset returns the offset of the start of the last n lines of f.
func tailOffset(f *os.File, n int64) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if n <= 0 {
		return size, nil
	}
	const block = 32 << 10
	buf := make([]byte, block)
	pos := size
	lines := int64(0)
	// A file normally ends with "\n": that one does not start a line.
	first := true
	for pos > 0 {
		k := int64(block)
		if pos < k {
			k = pos
		}
		pos -= k
		if _, err := f.ReadAt(buf[:k], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := k - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			if first && pos+i == size-1 {
				first = false
				continue
			}
			lines++
			if lines == n {
				return pos + i + 1, nil
			}
		}
		first = false
	}
	return 0, nil
}

// streamLogFile writes the lines of a CRI log file. With inst set
// (Follow), it waits for more until the instance's output has ended or
// ctx is done.
func streamLogFile(ctx context.Context, path string, opts LogOptions, inst *instance, w io.Writer) error {
	var since time.Time
	if opts.SinceSeconds != nil && *opts.SinceSeconds > 0 {
		since = time.Now().Add(-time.Duration(*opts.SinceSeconds) * time.Second)
	}
	var f *os.File
	open := func() error {
		var err error
		f, err = os.Open(path)
		if err != nil {
			return err
		}
		if opts.TailLines != nil {
			off, err := tailOffset(f, *opts.TailLines)
			if err != nil {
				return err
			}
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		err := open()
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) || inst == nil {
			return err
		}
		select { // the instance has not created its log yet
		case <-ctx.Done():
			return nil
		case <-inst.logsDone:
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer f.Close()

	r := bufio.NewReaderSize(f, 64<<10)
	var pending []byte // an incomplete line at the end of the file
	newLine := true    // the next message starts a line (for timestamps)
	emit := func(raw []byte) error {
		l, ok := parseLogLine(raw)
		if !ok {
			return nil
		}
		if !since.IsZero() && l.ts.Before(since) {
			return nil
		}
		var out []byte
		if opts.Timestamps && newLine {
			out = append(out, l.ts.Format(time.RFC3339Nano)...)
			out = append(out, ' ')
		}
		out = append(out, l.text...)
		if !l.partial {
			out = append(out, '\n')
		}
		newLine = !l.partial
		_, err := w.Write(out)
		return err
	}
	drain := func() error {
		for {
			line, err := r.ReadBytes('\n')
			if len(line) > 0 {
				if line[len(line)-1] != '\n' {
					pending = append(pending, line...)
				} else {
					full := append(pending, line[:len(line)-1]...)
					pending = nil
					if err := emit(full); err != nil {
						return err
					}
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	if inst == nil {
		return drain()
	}
	for {
		wait := inst.logs.notify.wait()
		if err := drain(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-inst.logsDone:
			return drain()
		case <-wait:
		case <-time.After(time.Second):
		}
	}
}
