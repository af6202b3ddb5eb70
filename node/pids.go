package node

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// pidRecord is what StateDir/pids/<pgid> holds about a process group the
// node started, so that the next run can kill what a crashed node left.
// StartTime (field 22 of /proc/PID/stat, in clock ticks since boot) tells
// the recorded process from a later one that reuses its PID.
type pidRecord struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	UID       string `json:"uid"`
	Container string `json:"container"`
}

func (n *Node) pidDir() string { return filepath.Join(n.cfg.StateDir, "pids") }

func (n *Node) recordPid(pod *corev1.Pod, container string, pid int) {
	st, _, ok := procStat(pid)
	if !ok {
		return
	}
	rec := pidRecord{PID: pid, StartTime: st, Namespace: pod.Namespace, Pod: pod.Name, UID: string(pod.UID), Container: container}
	data, _ := json.Marshal(rec)
	path := filepath.Join(n.pidDir(), strconv.Itoa(pid))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		n.log.Warn("recording process", "pid", pid, "err", err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		n.log.Warn("recording process", "pid", pid, "err", err)
	}
}

func (n *Node) forgetPid(pid int) {
	_ = os.Remove(filepath.Join(n.pidDir(), strconv.Itoa(pid)))
}

// procStat reads a process's start time and process group from
// /proc/PID/stat.
func procStat(pid int) (startTime uint64, pgrp int, ok bool) {
	st, pg, _, ok := procStatState(pid)
	return st, pg, ok
}

// procStatState is procStat with the process state (R, S, Z, ...).
func procStatState(pid int) (startTime uint64, pgrp int, state byte, ok bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	// The command (field 2) is in parentheses and may hold anything.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 20 || len(f[0]) == 0 {
		return 0, 0, 0, false
	}
	pg, err1 := strconv.Atoi(f[2])
	st, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	return st, pg, f[0][0], true
}

// groupMembers lists the live processes in process group pgid that
// started no earlier than minStart (zombies are dead already: their
// parent, or init, reaps them).
func groupMembers(pgid int, minStart uint64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, pg, state, ok := procStatState(pid)
		if ok && pg == pgid && st >= minStart && state != 'Z' && state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// killGroup signals a process group; it refuses pgid 0 and 1, which would
// mean our own group or every process.
func killGroup(pgid int, sig unix.Signal) error {
	if pgid <= 1 {
		return errors.New("refusing to signal process group <= 1")
	}
	return unix.Kill(-pgid, sig)
}

// groupAlive tells whether a live process is left in the group; zombies
// waiting for init to reap them do not count.
func groupAlive(pgid int) bool {
	if pgid <= 1 || unix.Kill(-pgid, 0) != nil {
		return false
	}
	return len(groupMembers(pgid, 0)) > 0
}

// waitGroupGone waits until the process group is empty, killing it again
// every second, for at most limit.
func (n *Node) waitGroupGone(pgid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last := time.Now()
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			n.log.Warn("process group still has members", "pgid", pgid)
			return
		}
		if time.Since(last) > time.Second {
			_ = killGroup(pgid, unix.SIGKILL)
			last = time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killLeftovers kills the process groups a previous run recorded and that
// still exist, and returns how many it killed. A group counts as ours when
// its leader still has the recorded start time, or when the leader is gone
// and members of the group started after it.
func (n *Node) killLeftovers() int {
	entries, err := os.ReadDir(n.pidDir())
	if err != nil {
		return 0
	}
	killed := 0
	for _, e := range entries {
		path := filepath.Join(n.pidDir(), e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			_ = os.Remove(path)
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var rec pidRecord
		if json.Unmarshal(data, &rec) != nil || rec.PID <= 1 {
			_ = os.Remove(path)
			continue
		}
		st, _, alive := procStat(rec.PID)
		switch {
		case alive && st == rec.StartTime:
			n.log.Info("killing a process group left by a previous run", "pgid", rec.PID, "pod", rec.Namespace+"/"+rec.Pod, "container", rec.Container)
			_ = killGroup(rec.PID, unix.SIGKILL)
			n.waitGroupGone(rec.PID, 5*time.Second)
			killed++
		case !alive:
			if members := groupMembers(rec.PID, rec.StartTime); len(members) > 0 {
				n.log.Info("killing processes left by a previous run", "pgid", rec.PID, "pids", members, "pod", rec.Namespace+"/"+rec.Pod, "container", rec.Container)
				_ = killGroup(rec.PID, unix.SIGKILL)
				n.waitGroupGone(rec.PID, 5*time.Second)
				killed++
			}
		}
		// alive with another start time: the PID was reused by a process
		// that is not ours.
		_ = os.Remove(path)
	}
	return killed
}
