package standalone

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// `up --network netns` runs in two processes, the way kind puts a node in
// a container:
//
//   - the parent (in the host's namespaces) takes the node's namespace
//     lock, removes what a crashed run left (sandbox.RemoveNodeNamespaces),
//     creates the node network namespace sb-<node> and starts itself again
//     inside it with EnvNodeNetNS set; it forwards SIGINT and SIGTERM, and
//     once the child has exited it removes the node namespace;
//   - the child does everything `up` does, with every socket it opens
//     (cluster DNS, probes, hooks, the service proxy's nftables, the
//     ingress controller, the local API's TCP address) inside the node
//     namespace, which holds the pods' bridge. Nothing it does reaches the
//     host's namespace: the local API's Unix socket in the state directory
//     is the way in.

// Networks of up.
const (
	NetworkLoopback = "loopback"
	NetworkNetNS    = "netns"
	// NetworkAuto, the flag's default, is netns as root and loopback
	// otherwise.
	NetworkAuto = "auto"
)

// EnvNodeNetNS tells a re-executed `up` that it runs inside this node
// network namespace (a path under /run/netns).
const EnvNodeNetNS = "SWITCHBOARD_NODE_NETNS"

// Defaults of the netns sandbox: private ranges, which exist only inside
// the node namespace.
var (
	DefaultNetNSPodCIDR     = sandbox.DefaultNetNSPodCIDR
	DefaultNetNSServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
)

// nodeLockDir holds one lock per node namespace, so that two `up`s with the
// same node name (and different state directories) never remove each
// other's namespaces.
const nodeLockDir = "/run/switchboard-nodes"

// EnvClusterNodes carries the nodes of a several-node cluster (JSON of
// []ClusterNode) to the child, which runs in the first one's namespace.
const EnvClusterNodes = "SWITCHBOARD_CLUSTER_NODES"

// parentSpec is what the parent creates: one node namespace per node and,
// for several, the fabric (named after cluster) joining them.
type parentSpec struct {
	nodes   []ClusterNode // names and pod CIDRs; the parent fills NetNS
	cluster string
	overlay string
}

// runNetNSParent is the parent of `up --network netns`: it returns the
// child's exit status as an error when it is not 0.
// It publishes req on the host's loopback (see publish.go) while the
// child runs.
func runNetNSParent(spec parentSpec, req publishRequest, log *slog.Logger, out, errOut io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("--network netns needs root (network namespaces, bind mounts); run `sudo switchboard up ...`, or use --network loopback")
	}
	if err := os.MkdirAll(nodeLockDir, 0o755); err != nil {
		return err
	}
	multi := len(spec.nodes) > 1
	locks := []string{}
	for _, cn := range spec.nodes {
		locks = append(locks, sandbox.NodeNamespaceName(cn.Name))
	}
	if multi {
		locks = append(locks, sandbox.FabricNamespaceName(spec.cluster))
	}
	for _, nsName := range locks {
		lockPath := filepath.Join(nodeLockDir, nsName+".lock")
		lf, err := lockNode(lockPath)
		if err != nil {
			return fmt.Errorf("%s: %w", nsName, err)
		}
		defer func() {
			// Removed before unlocking: a node starting meanwhile notices.
			_ = os.Remove(lockPath)
			_ = unix.Flock(int(lf.Fd()), unix.LOCK_UN)
			lf.Close()
		}()
	}
	removeAll := func() (int, error) {
		total := 0
		var errs []error
		for _, cn := range spec.nodes {
			n, err := sandbox.RemoveNodeNamespaces(cn.Name)
			total += n
			errs = append(errs, err)
		}
		if multi {
			fab := filepath.Join(sandbox.NetnsDir, sandbox.FabricNamespaceName(spec.cluster))
			if _, err := os.Stat(fab); err == nil {
				total++
			}
			errs = append(errs, sandbox.RemoveNamedNetNS(fab))
		}
		return total, errors.Join(errs...)
	}
	if n, err := removeAll(); err != nil {
		return fmt.Errorf("removing what a previous run left: %w", err)
	} else if n > 0 {
		fmt.Fprintf(out, "removed %d network namespaces a previous run of node %s left\n", n, spec.nodes[0].Name)
	}
	defer func() {
		if _, err := removeAll(); err != nil {
			fmt.Fprintf(errOut, "removing node namespaces: %v\n", err)
		}
	}()
	for i := range spec.nodes {
		p, err := sandbox.CreateNamedNetNS(sandbox.NodeNamespaceName(spec.nodes[i].Name))
		if err != nil {
			return err
		}
		spec.nodes[i].NetNS = p
	}
	path := spec.nodes[0].NetNS
	env := []string{EnvNodeNetNS + "=" + path}
	if multi {
		var fnodes []sandbox.FabricNode
		for _, cn := range spec.nodes {
			fnodes = append(fnodes, sandbox.FabricNode{Name: cn.Name, NetNS: cn.NetNS, PodCIDR: cn.PodCIDR})
		}
		fab, err := sandbox.CreateFabric(sandbox.FabricConfig{Name: spec.cluster, Nodes: fnodes, Overlay: spec.overlay})
		if err != nil {
			return err
		}
		defer func() {
			if err := fab.Close(); err != nil {
				fmt.Fprintf(errOut, "removing the fabric: %v\n", err)
			}
		}()
		b, _ := json.Marshal(spec.nodes)
		env = append(env, EnvClusterNodes+"="+string(b))
	}

	pub, ports, err := publish(req, out, log)
	if err != nil {
		return err
	}
	defer pub.close()

	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(append(os.Environ(), env...), ports.env())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, out, errOut
	// The child stops its pods when the parent dies: it sees the end of
	// this pipe (a parent-death signal would follow the parent's thread,
	// not the process).
	alive, aliveW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer aliveW.Close()
	cmd.ExtraFiles = []*os.File{alive}
	// Its own process group: a terminal's Ctrl-C reaches the parent only,
	// which forwards it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := sandbox.InNetNS(path, cmd.Start); err != nil {
		alive.Close()
		return fmt.Errorf("starting the node in %s: %w", path, err)
	}
	alive.Close()
	pub.serve(path)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var last time.Time
	for {
		select {
		case s := <-sigs:
			// One signal sent twice at once (timeout(1) signals the
			// process and its group) is one request to stop, not the
			// second signal that makes the node exit at once.
			if time.Since(last) < time.Second {
				continue
			}
			last = time.Now()
			_ = cmd.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return &exitError{code: ee.ExitCode()}
			}
			return err
		}
	}
}

// lockNode takes the lock of a node name (see lockStateDir).
func lockNode(path string) (*os.File, error) {
	for attempt := 0; attempt < 10; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			return nil, fmt.Errorf("another `switchboard up` runs with this node name (it holds %s); pass --node-name", path)
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil && held.Ino == now.Ino {
			return f, nil
		}
		f.Close() // removed by the holder before us: take the new file
	}
	return nil, fmt.Errorf("lock %s keeps changing", path)
}

// exitError is the child's exit status.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("node exited with status %d", e.code) }

// ExitCode is the status the command exits with.
func (e *exitError) ExitCode() int { return e.code }

// parentAliveFd is the child's end of the parent's pipe (ExtraFiles[0]).
const parentAliveFd = 3

// watchParent calls stop once the parent of a netns child is gone.
func watchParent(stop func()) {
	f := os.NewFile(parentAliveFd, "parent")
	if f == nil {
		return
	}
	go func() {
		var b [1]byte
		_, _ = f.Read(b[:]) // returns at EOF: the parent is gone
		f.Close()
		stop()
	}()
}

// childNodeNetNS returns the node namespace this process runs in when it
// is the child of runNetNSParent, after checking that it really is in it
// (and that it is not the host's).
func childNodeNetNS() (string, bool, error) {
	path := os.Getenv(EnvNodeNetNS)
	if path == "" {
		return "", false, nil
	}
	if sandbox.IsRootNetNS(path) {
		return "", true, fmt.Errorf("%s=%s is the host's network namespace", EnvNodeNetNS, path)
	}
	var a, b unix.Stat_t
	if err := unix.Stat(path, &a); err != nil {
		return "", true, fmt.Errorf("%s: %w", EnvNodeNetNS, err)
	}
	if err := unix.Stat("/proc/self/ns/net", &b); err != nil {
		return "", true, err
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return "", true, fmt.Errorf("%s=%s, but this process runs in another network namespace", EnvNodeNetNS, path)
	}
	return path, true, nil
}

// childClusterNodes reads EnvClusterNodes (nil: one node).
func childClusterNodes() ([]ClusterNode, error) {
	v := os.Getenv(EnvClusterNodes)
	if v == "" {
		return nil, nil
	}
	var nodes []ClusterNode
	if err := json.Unmarshal([]byte(v), &nodes); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvClusterNodes, err)
	}
	return nodes, nil
}
