package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// helperWatch samples the processes this process started (and theirs),
// the helper programs a mode runs (iptables-restore, iptables-save,
// conntrack, nft), and keeps the largest peak RSS (VmHWM) seen and whose
// it was.
//
// Why not getrusage(RUSAGE_CHILDREN): Go starts programs with
// clone(CLONE_VM|CLONE_VFORK), and at exec the kernel records the high
// water mark of the mm being left, the parent's, as the child's maxrss;
// so every child's ru_maxrss is at least this process's own peak at the
// time. /proc/PID/status of an exec'd child shows its own mm only.
//
// Processes that live less than one interval can be missed: those are
// the small ones (a helper's memory grows with the rules it handles, and
// so does its run time).
type helperWatch struct {
	self string // our executable: a child still showing it has not exec'd yet
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	peak int64
	name string
}

const helperSampleEvery = 10 * time.Millisecond

func watchHelpers() *helperWatch {
	w := &helperWatch{stop: make(chan struct{}), done: make(chan struct{})}
	w.self, _ = os.Readlink("/proc/self/exe")
	go func() {
		defer close(w.done)
		t := time.NewTicker(helperSampleEvery)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// close stops sampling and returns the largest peak RSS in bytes (0 when
// no helper was seen) and the helper's name.
func (w *helperWatch) close() (int64, string) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak, w.name
}

// sample reads the peak RSS of every descendant.
func (w *helperWatch) sample() {
	seen := map[int]bool{}
	queue := childrenOf(os.Getpid())
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		queue = append(queue, childrenOf(pid)...)
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe == w.self {
			continue // gone, or not yet exec'd (it still shares our memory)
		}
		hwm := procVmHWM(pid)
		name := filepath.Base(exe)
		if argv, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			if arg0, _, _ := strings.Cut(string(argv), "\x00"); arg0 != "" {
				name = filepath.Base(arg0) // iptables-restore, not xtables-nft-multi
			}
		}
		w.mu.Lock()
		if hwm > w.peak {
			w.peak, w.name = hwm, name
		}
		w.mu.Unlock()
	}
}

// childrenOf lists the children of every thread of pid.
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// procVmHWM is a process's peak resident set (VmHWM) in bytes, 0 if
// unknown.
func procVmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
