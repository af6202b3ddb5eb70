package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// The netns sandbox starts every process of a pod through a re-execution
// of the running binary under the name ExecHelperName (argv[0]): before
// main runs, this package's init notices the name, and the helper
// (runExecHelper) enters the pod's namespaces and then execs the real
// command, so the pid, the process group and the parent-death signal the
// node set stay those of the container's process.
//
// Its arguments, in order: the network namespace to enter ("" stays in
// the current one), the hostname for a new UTS namespace ("" none), the
// file to bind over /etc/resolv.conf ("" none), the file to bind over
// /etc/hosts ("" none), the executable, then the command's argv.

// ExecHelperName is argv[0] of the helper.
const ExecHelperName = "switchboard-sandbox-exec"

const execHelperFixedArgs = 5 // netns, hostname, resolv, hosts, path

func init() {
	if filepath.Base(os.Args[0]) == ExecHelperName && len(os.Args) > 1 {
		err := runExecHelper(os.Args[1:])
		fmt.Fprintf(os.Stderr, "%s: %v\n", ExecHelperName, err)
		os.Exit(127)
	}
}

// execSpec is what the helper does.
type execSpec struct {
	NetNS    string
	Hostname string
	Resolv   string
	Hosts    string
	Path     string
	Argv     []string
}

// wrap rewrites cmd to run through the helper; it keeps Env, Dir,
// SysProcAttr and the standard streams.
func (s execSpec) wrap(cmd *exec.Cmd, self string) {
	args := []string{ExecHelperName, s.NetNS, s.Hostname, s.Resolv, s.Hosts, s.Path}
	cmd.Path = self
	cmd.Args = append(args, s.Argv...)
}

// runExecHelper enters the namespaces and execs; it returns only on
// failure.
func runExecHelper(args []string) error {
	if len(args) < execHelperFixedArgs+1 {
		return fmt.Errorf("usage: %s NETNS HOSTNAME RESOLV HOSTS PATH ARGV0 [ARG...]", ExecHelperName)
	}
	s := execSpec{NetNS: args[0], Hostname: args[1], Resolv: args[2], Hosts: args[3], Path: args[4], Argv: args[5:]}
	// Namespaces are per thread: everything from here to execve happens on
	// this one, and execve makes it the process.
	runtime.LockOSThread()
	flags := 0
	if s.Resolv != "" || s.Hosts != "" {
		flags |= unix.CLONE_NEWNS
	}
	if s.Hostname != "" {
		flags |= unix.CLONE_NEWUTS
	}
	if flags != 0 {
		if err := unix.Unshare(flags); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
	}
	if flags&unix.CLONE_NEWNS != 0 {
		// Our bind mounts must never propagate to the host's mount
		// namespace; the host's later mounts still reach us.
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			return fmt.Errorf("making / a slave mount: %w", err)
		}
		for _, b := range []struct{ src, dst string }{{s.Resolv, "/etc/resolv.conf"}, {s.Hosts, "/etc/hosts"}} {
			if b.src == "" {
				continue
			}
			if err := bindFile(b.src, b.dst); err != nil {
				return err
			}
		}
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("sethostname %q: %w", s.Hostname, err)
		}
	}
	if s.NetNS != "" {
		fd, err := unix.Open(s.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("network namespace %s: %w", s.NetNS, err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering network namespace %s: %w", s.NetNS, err)
		}
		unix.Close(fd)
	}
	err := syscall.Exec(s.Path, s.Argv, os.Environ())
	return fmt.Errorf("exec %s: %w", s.Path, err)
}

// bindFile binds src over dst. When dst is a symbolic link (systemd's
// /etc/resolv.conf), its target is covered; when the target is missing,
// the link itself cannot be covered and that is an error.
func bindFile(src, dst string) error {
	target := dst
	if t, err := filepath.EvalSymlinks(dst); err == nil {
		target = t
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if _, err := os.Stat(target); err != nil {
		return fmt.Errorf("%s: %w (it must exist to be covered)", dst, err)
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s over %s: %w", src, target, err)
	}
	// Read-only like the files a container runtime mounts? kubelet mounts
	// them read-write; so do we.
	return nil
}

// NewExecHelperCommand returns the hidden `switchboard sandbox-exec`
// command: the same helper for a user or a script, e.g.
//
//	switchboard sandbox-exec /run/netns/sb-node-1-p-UID HOST RESOLV HOSTS /bin/sh sh
//
// (The node itself re-executes the binary as ExecHelperName, which works
// in any binary that links this package.)
func NewExecHelperCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "sandbox-exec NETNS HOSTNAME RESOLV HOSTS PATH ARGV0 [ARG...]",
		Short:              "Run a command inside a pod's namespaces (used by the netns sandbox)",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return runExecHelper(args)
		},
	}
}
