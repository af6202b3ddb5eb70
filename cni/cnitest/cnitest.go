// Package cnitest builds what CNI tests and benchmarks run against: a CNI
// bin dir holding a freshly built switchboard plugin (and its
// switchboard-ipam link) next to Debian's reference plugins, throwaway
// network namespaces, and a libcni runtime whose every call runs with its
// thread inside a "node" namespace, so that bridges, veths and rules are
// made there and never in the root namespace.
//
// Namespaces are named like internal/testnet's ("sbt-<pid>x<rand>-NAME"
// under /run/netns) so that testnet.Sweep removes what a killed run left.
// This package owns only what it creates.
package cnitest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/internal/testnet"
)

// RefPluginDir is where Debian's containernetworking-plugins package puts
// the reference plugins.
const RefPluginDir = "/usr/lib/cni"

// RefPackage is the Debian package with the reference plugins.
const RefPackage = "containernetworking-plugins"

// RefPlugins are the reference plugins the tests and the benchmark use.
var RefPlugins = []string{"bridge", "host-local", "portmap", "loopback"}

// PluginPackage is the main package built as the "switchboard" binary.
const PluginPackage = "github.com/switchboard-dev/switchboard/cmd/switchboard-cni"

// BuildBinDir fills dir with the switchboard binary (go build of
// PluginPackage), a link switchboard-ipam to it, and links to the
// reference plugins. It fails naming the package to install when a
// reference plugin is missing.
func BuildBinDir(ctx context.Context, dir string) error {
	for _, p := range RefPlugins {
		if _, err := os.Stat(filepath.Join(RefPluginDir, p)); err != nil {
			return fmt.Errorf("reference plugin %s missing (apt-get install %s): %w", p, RefPackage, err)
		}
		if err := os.Symlink(filepath.Join(RefPluginDir, p), filepath.Join(dir, p)); err != nil {
			return err
		}
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if p, err := exec.LookPath("go"); err == nil {
		gobin = p
	}
	out := filepath.Join(dir, "switchboard")
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, PluginPackage)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", PluginPackage, err, b)
	}
	return os.Symlink("switchboard", filepath.Join(dir, "switchboard-ipam"))
}

var nsCounter atomic.Int64

// NetNS is a named network namespace made by NewNetNS.
type NetNS struct {
	Name string
	Path string
}

// NewNetNS creates /run/netns/sbt-<pid>x<rand>-<name> with lo up. The
// returned close function removes it; it is safe to call when creation
// failed half-way, and more than once.
func NewNetNS(name string) (*NetNS, func() error, error) {
	n := &NetNS{Name: fmt.Sprintf("%s%dx%s%d-%s", testnet.Prefix, os.Getpid(), utilrand.String(4), nsCounter.Add(1), name)}
	n.Path = filepath.Join(testnet.NetnsDir, n.Name)
	var owned atomic.Bool
	var once sync.Once
	var cerr error
	closeFn := func() error {
		once.Do(func() {
			if !owned.Load() {
				return
			}
			if err := unix.Unmount(n.Path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				cerr = fmt.Errorf("unmount %s: %w", n.Path, err)
			}
			if err := os.Remove(n.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				cerr = errors.Join(cerr, err)
			}
		})
		return cerr
	}
	if err := os.MkdirAll(testnet.NetnsDir, 0o755); err != nil {
		return nil, closeFn, err
	}
	errc := make(chan error, 1)
	go func() {
		// The thread ends up in the new namespace and is never unlocked:
		// the runtime destroys it when this goroutine returns.
		runtime.LockOSThread()
		f, err := os.OpenFile(n.Path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			errc <- err
			return
		}
		owned.Store(true)
		f.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), n.Path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount %s: %w", n.Path, err)
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return nil, closeFn, fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	return n, closeFn, nil
}

// Do runs f on a thread inside the namespace (ns.NetNS.Do): commands and
// plugin processes f starts run in it, goroutines f starts do not.
func (n *NetNS) Do(f func() error) error {
	h, err := ns.GetNS(n.Path)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Do(func(ns.NetNS) error { return f() })
}

// Runtime is a libcni runtime that runs every plugin inside Node.
type Runtime struct {
	Node   *NetNS
	BinDir string
	CNI    *libcni.CNIConfig
}

// NewRuntime returns a runtime with its own result cache dir.
func NewRuntime(node *NetNS, binDir, cacheDir string) *Runtime {
	return &Runtime{Node: node, BinDir: binDir, CNI: libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, nil)}
}

// Attachment names one container interface.
func Attachment(id, netnsPath, ifname string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: netnsPath, IfName: ifname}
}

// Add runs ADD of list inside the node namespace.
func (r *Runtime) Add(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (res types.Result, err error) {
	err = r.Node.Do(func() error {
		res, err = r.CNI.AddNetworkList(ctx, list, rt)
		return err
	})
	return res, err
}

// Check runs CHECK inside the node namespace.
func (r *Runtime) Check(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return r.Node.Do(func() error { return r.CNI.CheckNetworkList(ctx, list, rt) })
}

// Del runs DEL inside the node namespace.
func (r *Runtime) Del(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return r.Node.Do(func() error { return r.CNI.DelNetworkList(ctx, list, rt) })
}

// GC runs GC with the valid attachments inside the node namespace.
func (r *Runtime) GC(ctx context.Context, list *libcni.NetworkConfigList, valid []types.GCAttachment) error {
	return r.Node.Do(func() error {
		return r.CNI.GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid})
	})
}

// Status runs STATUS inside the node namespace.
func (r *Runtime) Status(ctx context.Context, list *libcni.NetworkConfigList) error {
	return r.Node.Do(func() error { return r.CNI.GetStatusNetworkList(ctx, list) })
}

// AddNetwork runs ADD of one plugin config (e.g. loopback) in the node.
func (r *Runtime) AddNetwork(ctx context.Context, conf *libcni.PluginConfig, rt *libcni.RuntimeConf) (res types.Result, err error) {
	err = r.Node.Do(func() error {
		res, err = r.CNI.AddNetwork(ctx, conf, rt)
		return err
	})
	return res, err
}

// DelNetwork runs DEL of one plugin config in the node.
func (r *Runtime) DelNetwork(ctx context.Context, conf *libcni.PluginConfig, rt *libcni.RuntimeConf) error {
	return r.Node.Do(func() error { return r.CNI.DelNetwork(ctx, conf, rt) })
}

// Links lists the link names of the namespace, sorted by index.
func (n *NetNS) Links() ([]string, error) {
	var names []string
	err := n.Do(func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	})
	return names, err
}

// Exec runs a command inside the namespace and returns its output.
func (n *NetNS) Exec(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = 5 * time.Second
	var out []byte
	err := n.Do(func() error {
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	if err != nil {
		return string(out), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), n.Name, err, out)
	}
	return string(out), nil
}
