package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces live (iproute2's "ip netns"
// directory), so that `ip netns list` shows ours.
const NetnsDir = "/run/netns"

// NodeNamespacePrefix starts the name of every namespace the netns
// sandbox creates: "sb-<node>" for a node, "sb-<node>-p-<pod uid>" for its
// pods.
const NodeNamespacePrefix = "sb-"

// NodeNamespaceName is the name of a node's network namespace.
func NodeNamespaceName(node string) string {
	var b strings.Builder
	b.WriteString(NodeNamespacePrefix)
	for _, r := range node {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// podNamespaceName is the name of a pod's network namespace on a node.
func podNamespaceName(node, uid string) string {
	return NodeNamespaceName(node) + "-p-" + uid
}

// CreateNamedNetNS creates the network namespace NetnsDir/name with lo up
// and returns its path. It fails when the name is taken.
func CreateNamedNetNS(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return "", fmt.Errorf("network namespace name %q: invalid", name)
	}
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return "", err
	}
	// /run/netns is a shared mount point in iproute2's layout, so that
	// the bind mounts below show in every mount namespace.
	path := filepath.Join(NetnsDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("network namespace %s: %w", name, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread ends up in the new namespace and is never unlocked:
		// the runtime destroys it when this goroutine returns.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount: %w", err)
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		_ = RemoveNamedNetNS(path)
		return "", fmt.Errorf("network namespace %s: %w", name, err)
	}
	return path, nil
}

// RemoveNamedNetNS unmounts and removes a named namespace; a missing one
// is not an error. The namespace itself goes away once no process is left
// in it.
func RemoveNamedNetNS(path string) error {
	var errs []error
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RemoveNodeNamespaces removes the node's namespace and its pods' (what a
// crashed node left behind) and returns how many it removed.
func RemoveNodeNamespaces(node string) (int, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	base := NodeNamespaceName(node)
	var errs []error
	n := 0
	for _, e := range entries {
		if e.Name() != base && !strings.HasPrefix(e.Name(), base+"-p-") {
			continue
		}
		if err := RemoveNamedNetNS(filepath.Join(NetnsDir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// sameNetNS reports whether two namespace files are the same namespace.
func sameNetNS(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

// procNetInitIno is the kernel's PROC_NET_INIT_INO: the inode number of
// the initial (host's) network namespace.
const procNetInitIno = 0xEFFFFFF9

// IsRootNetNS reports whether path is the host's network namespace (the
// kernel's initial one, or PID 1's when that can be read), which the
// netns sandbox never programs. When unsure it says yes.
func IsRootNetNS(path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Ino == procNetInitIno {
		return true
	}
	same, err := sameNetNS(path, "/proc/1/ns/net")
	return err == nil && same
}

// InNetNS runs f on a thread inside the namespace at path.
func InNetNS(path string, f func() error) error {
	h, err := ns.GetNS(path)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Do(func(ns.NetNS) error { return f() })
}
