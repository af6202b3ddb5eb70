package spawn

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// A child started with Pdeathsig survives the end of the thread of a
// goroutine that returned while locked to it (the runtime then ends that
// thread), where a child that thread forked itself is killed with it.
func TestChildSurvivesEndedThreads(t *testing.T) {
	for _, tc := range []struct {
		name       string
		viaSpawn   bool
		wantKilled bool
	}{
		{"cmd.Start on a thread that then ends: killed (the bug)", false, true},
		{"spawn.Start: survives", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				tid int
				err error
			}
			var cmd *exec.Cmd
			var r result
			// The runtime never ends the main thread (it parks it): try
			// until the goroutine runs on another.
			for try := 0; try == 0 || r.tid == os.Getpid(); try++ {
				if try > 0 {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
				cmd = exec.Command("sleep", "30")
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				started := make(chan result, 1)
				go func() {
					// This goroutine's thread ends when it returns locked.
					runtime.LockOSThread()
					r := result{tid: syscall.Gettid()}
					if tc.viaSpawn {
						r.err = Start(cmd)
					} else {
						r.err = cmd.Start()
					}
					started <- r
				}()
				if r = <-started; r.err != nil {
					t.Fatal(r.err)
				}
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			exited := make(chan *os.ProcessState, 1)
			go func() { _ = cmd.Wait(); exited <- cmd.ProcessState }()
			task := fmt.Sprintf("/proc/self/task/%d", r.tid)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(task); os.IsNotExist(err) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("thread %d did not end", r.tid)
				}
			}
			select {
			case ps := <-exited:
				if !tc.wantKilled {
					t.Fatalf("the child exited when the thread %d ended: %v", r.tid, ps)
				}
				if ws, ok := ps.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("the child exited with %v, want SIGKILL", ps)
				}
			case <-time.After(time.Second):
				if tc.wantKilled {
					t.Fatalf("the child outlived its creating thread %d (prctl(2) PR_SET_PDEATHSIG says it is killed)", r.tid)
				}
			}
		})
	}
}
