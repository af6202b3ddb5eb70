package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// Host is one namespace of a Net: the node, a pod or a client.
type Host struct {
	// Name is the name given to AddPod/AddClient (Options.NodeName for
	// the node); the servers answer with it.
	Name string
	// IP is the host's address: a pod's address from the pod CIDR, a
	// client's address, or the node's address on client 0's link.
	IP netip.Addr
	// NSPath is the namespace's bind mount, /run/netns/<NetNS>.
	NSPath string

	// NetNS is the namespace's name for "ip netns exec".
	NetNS string
	// Prefix is IP with the length of its subnet.
	Prefix netip.Prefix
	// Gateway is where the host's routes point (the bridge address for
	// pods, the node's side of the link for clients; invalid for the
	// node).
	Gateway netip.Addr
	// HostLink is the node-side link of a pod (sbp<N>, a port of sbbr0)
	// or a client (sbc<N>); empty for the node.
	HostLink string
}

func (h *Host) String() string { return h.Name + "(" + h.NetNS + ")" }

// Do runs f on a locked OS thread inside h's namespace and returns its
// error. Sockets f creates stay in the namespace; commands f starts run in
// it. Goroutines f starts do NOT run in the namespace. A panic in f is
// re-raised in the caller's goroutine (so test clean-ups run), and
// t.FailNow/SkipNow (runtime.Goexit) in f ends the caller's goroutine too.
func (h *Host) Do(f func() error) error {
	netNS, err := ns.GetNS(h.NSPath)
	if err != nil {
		return fmt.Errorf("namespace of %s: %w", h.Name, err)
	}
	defer netNS.Close()
	var (
		returned bool
		panicked bool
		pval     any
		stack    []byte
	)
	err = netNS.Do(func(ns.NetNS) error {
		defer func() {
			if returned {
				return
			}
			if r := recover(); r != nil {
				panicked, pval, stack = true, r, debug.Stack()
			}
		}()
		err := f()
		returned = true
		return err
	})
	switch {
	case panicked:
		panic(fmt.Sprintf("testnet: panic in namespace %s: %v\n%s", h.NetNS, pval, stack))
	case !returned && err == nil:
		runtime.Goexit()
	}
	return err
}

// procSysPath maps "net.ipv4.ip_forward" to /proc/sys/net/ipv4/ip_forward.
// Slashes are accepted as separators too (for names holding dots, such
// as interface names: "net/ipv4/conf/eth0.1/rp_filter").
func procSysPath(name string) string {
	if !strings.Contains(name, "/") {
		name = strings.ReplaceAll(name, ".", "/")
	}
	return filepath.Join("/proc/sys", filepath.Clean("/"+name))
}

// writeSysctl writes a sysctl of the calling thread's namespace.
func writeSysctl(name, value string) error {
	p := procSysPath(name)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// SetSysctl sets a per-namespace sysctl ("net.ipv4.conf.all.rp_filter")
// in h's namespace.
func (h *Host) SetSysctl(name, value string) error {
	return h.Do(func() error { return writeSysctl(name, value) })
}

// Sysctl reads a per-namespace sysctl in h's namespace.
func (h *Host) Sysctl(name string) (string, error) {
	var out []byte
	err := h.Do(func() error {
		var err error
		out, err = os.ReadFile(procSysPath(name))
		return err
	})
	return strings.TrimSpace(string(out)), err
}

// Exec runs a command in h's namespace (forked from a thread inside it,
// see Do) and returns its standard output. A failure's error holds the
// command, the host and the standard error.
func (h *Host) Exec(ctx context.Context, args ...string) ([]byte, error) {
	return h.ExecInput(ctx, nil, args...)
}

// ExecInput is Exec with stdin (e.g. "nft -f -").
func (h *Host) ExecInput(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	if len(args) == 0 {
		return nil, errors.New("testnet: Exec needs a command")
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.WaitDelay = 5 * time.Second
	if err := h.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("%s in %s: %w", strings.Join(args, " "), h.NetNS, err)
	}
	if err := cmd.Wait(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), h.NetNS, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Command returns an unstarted command that runs args in h's namespace
// through nsenter(1): "nsenter --net=NSPath -- args...". Unlike Exec and
// Start it may be started from any goroutine, so it suits code that takes
// a command factory and runs commands from goroutines of its own.
func (h *Host) Command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + h.NSPath, "--"}, args...)...)
}

// Start starts a prepared, not yet started command in h's namespace and
// registers on t its end: SIGKILL unless it has exited, then Wait. It
// fails t when the command cannot be started.
func (h *Host) Start(t TB, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan struct{})
	started := false
	t.Cleanup(func() {
		if !started {
			return
		}
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
	})
	if err := h.Do(cmd.Start); err != nil {
		t.Fatalf("testnet: start %s in %s: %v", strings.Join(cmd.Args, " "), h.NetNS, err)
	}
	started = true
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
}
