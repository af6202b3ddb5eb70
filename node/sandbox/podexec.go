package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"k8s.io/apimachinery/pkg/types"
)

// PodNamespaces is what a process of a pod enters in the netns sandbox:
// the pod's network namespace, a new UTS namespace with its hostname and a
// new mount namespace with its resolv.conf and hosts files bound over
// /etc/resolv.conf and /etc/hosts ("" for what a pod does not get: a
// hostNetwork pod keeps the node's hostname and hosts file).
//
// The sandbox writes it for every pod it sets up, to
// StateDir/sandboxes/<pod uid>/PodNamespacesFile, so that `switchboard
// exec` can run a command the way the node starts a container.
type PodNamespaces struct {
	NetNS      string `json:"netns"`
	Hostname   string `json:"hostname,omitempty"`
	ResolvConf string `json:"resolvConf,omitempty"`
	Hosts      string `json:"hosts,omitempty"`
}

// PodNamespacesFile is the file name of a pod's PodNamespaces.
const PodNamespacesFile = "namespaces.json"

// ErrNoPodSandbox says that a node's state directory has no netns sandbox
// for a pod: the pod is not set up (yet, or any more), or the node runs
// the loopback sandbox, whose pods share the host's namespaces.
var ErrNoPodSandbox = errors.New("no netns sandbox for the pod")

func writePodNamespaces(dir string, pn PodNamespaces) error {
	b, err := json.MarshalIndent(pn, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+PodNamespacesFile)
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, PodNamespacesFile))
}

// ReadPodNamespaces reads a pod's PodNamespaces from a node's state
// directory. A missing file is ErrNoPodSandbox.
func ReadPodNamespaces(stateDir string, uid types.UID) (PodNamespaces, error) {
	var pn PodNamespaces
	if uid == "" || filepath.Base(string(uid)) != string(uid) {
		return pn, fmt.Errorf("pod uid %q: invalid", uid)
	}
	path := filepath.Join(stateDir, "sandboxes", string(uid), PodNamespacesFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return pn, fmt.Errorf("%w (%s does not exist)", ErrNoPodSandbox, path)
	}
	if err != nil {
		return pn, err
	}
	if err := json.Unmarshal(b, &pn); err != nil {
		return pn, fmt.Errorf("%s: %w", path, err)
	}
	if pn.NetNS == "" {
		return pn, fmt.Errorf("%s: field netns: empty", path)
	}
	return pn, nil
}

// HelperArgs is the argv of the exec helper (run as the binary named
// ExecHelperName, e.g. /proc/self/exe) that enters pn and then execs path
// with argv.
func (pn PodNamespaces) HelperArgs(path string, argv []string) []string {
	s := execSpec{NetNS: pn.NetNS, Hostname: pn.Hostname, Resolv: pn.ResolvConf, Hosts: pn.Hosts, Path: path, Argv: argv}
	if len(s.Argv) == 0 {
		s.Argv = []string{path}
	}
	return append([]string{ExecHelperName, s.NetNS, s.Hostname, s.Resolv, s.Hosts, s.Path}, s.Argv...)
}

// ExecInPod replaces the running process with path (argv, env) inside
// pn, through the exec helper: the command keeps this process's pid,
// standard streams and terminal, and its exit status is the process's.
// Root is needed. It returns only on failure.
func ExecInPod(pn PodNamespaces, path string, argv, env []string) error {
	if os.Geteuid() != 0 {
		return errors.New("entering a pod's namespaces needs root (network, mount and UTS namespaces); run it with sudo")
	}
	err := syscall.Exec("/proc/self/exe", pn.HelperArgs(path, argv), env)
	return fmt.Errorf("exec helper: %w", err)
}
