package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// `switchboard exec` is the one command that is not a pure API client: a
// switchboard node has no exec endpoint, so exec asks the local API for
// the pod (name, uid, containers, phase), then enters the pod's namespaces
// on this host the way the node starts a container (sandbox.ExecInPod,
// from the files the netns sandbox keeps in the node's state directory).
// It works against a local node in the netns sandbox, as root.

type execFlags struct {
	namespace string
	container string
	stdin     bool
	tty       bool
}

func newExecCommand(opts *Options, out, errOut io.Writer) *cobra.Command {
	f := &execFlags{}
	cmd := &cobra.Command{
		Use:   "exec POD [-c CONTAINER] -- COMMAND [args...]",
		Short: "Run a command inside a pod's namespaces, as kubectl exec",
		Long: `Run a command inside a running pod: in the pod's network namespace, with the
pod's /etc/resolv.conf, /etc/hosts and hostname, the container's environment
and working directory, as the node starts the container's own process. The
command takes over this terminal; its exit status is exec's.

exec needs a local node in the netns sandbox ("sudo switchboard up --network
netns ...") and root: it enters the pod's namespaces on this host. Pods of the
loopback sandbox have no namespaces of their own (run the command directly).
-i and -t are accepted for kubectl's sake: the command always gets this
process's standard streams and terminal.`,
		Example: `  sudo switchboard exec client -- cat /etc/resolv.conf
  sudo switchboard exec web-7d4b9c-x2x9z -c web -- getent hosts backend
  sudo switchboard exec -it client -- sh`,
		Args: cobra.MinimumNArgs(1),
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's, else default)")
	fl.StringVarP(&f.container, "container", "c", "", "container name (default: the kubectl.kubernetes.io/default-container annotation's, else the first)")
	fl.BoolVarP(&f.stdin, "stdin", "i", false, "pass stdin to the command (always done)")
	fl.BoolVarP(&f.tty, "tty", "t", false, "stdin is a TTY (the command always gets this terminal)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		cmd.SilenceErrors = true
		dash := cmd.ArgsLenAtDash()
		return withErrors(errOut, func(ctx context.Context, args []string) error {
			if dash != 1 || len(args) < 2 {
				return errors.New("exec: expected POD -- COMMAND [args...] (kubectl's form, with --)")
			}
			return runExec(ctx, opts, f, args[0], args[1:], errOut)
		})(cmd.Context(), args)
	}
	return cmd
}

func runExec(ctx context.Context, opts *Options, f *execFlags, podName string, argv []string, errOut io.Writer) error {
	if opts.value(func(o *Options) *string { return o.Kubeconfig }) != "" {
		return errors.New("exec enters a pod's namespaces on this host: it works with a local switchboard node only, not with --kubeconfig")
	}
	c, err := newClient(opts)
	if err != nil {
		return err
	}
	ns := c.namespace
	if f.namespace != "" {
		ns = f.namespace
	}
	name := strings.TrimPrefix(podName, "pod/")
	name = strings.TrimPrefix(name, "pods/")
	o, err := c.get(ctx, cluster.KindPod, ns, name)
	if err != nil {
		return err
	}
	pod, ok := o.(*corev1.Pod)
	if !ok {
		return fmt.Errorf("pods %q: unexpected object %T", name, o)
	}
	// kubectl's checks and words.
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return fmt.Errorf("cannot exec into a container in a completed pod; current phase is %s", pod.Status.Phase)
	}
	container := f.container
	if container == "" {
		container = defaultContainer(pod, errOut)
	}
	spec := findContainer(pod, container)
	if spec == nil {
		return fmt.Errorf("container %s is not valid for pod %s", container, pod.Name)
	}

	stateDir := opts.value(func(o *Options) *string { return o.StateDir })
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	// Several nodes (up --nodes N) keep their state under nodes/NAME.
	if d := filepath.Join(stateDir, "nodes", pod.Spec.NodeName); pod.Spec.NodeName != "" {
		if _, err := os.Stat(d); err == nil {
			stateDir = d
		}
	}
	pn, err := sandbox.ReadPodNamespaces(stateDir, pod.UID)
	if errors.Is(err, sandbox.ErrNoPodSandbox) {
		if _, cerr := os.Stat(filepath.Join(stateDir, "sandboxes")); cerr != nil {
			return fmt.Errorf("pod %s/%s has no namespaces to enter: the node with state directory %s does not run the netns sandbox (exec needs `sudo switchboard up --network netns`; loopback pods run on the host: run the command directly)", pod.Namespace, pod.Name, stateDir)
		}
		return fmt.Errorf("pod %s/%s has no sandbox on the node with state directory %s (not started yet, or not on this node): %w", pod.Namespace, pod.Name, stateDir, err)
	}
	if err != nil {
		return err
	}

	// The container's environment and working directory, from its
	// running process when there is one (the node records them).
	env, dir := containerProcessEnv(stateDir, pod, container)
	if env == nil {
		env = []string{"PATH=" + defaultPath}
		if pn.Hostname != "" {
			env = append(env, "HOSTNAME="+pn.Hostname)
		}
		dir = spec.WorkingDir
	}
	if t := os.Getenv("TERM"); t != "" && envLookup(env, "TERM") == "" {
		env = append(env, "TERM="+t)
	}
	path, err := lookCommand(argv[0], envLookup(env, "PATH"), dir)
	if err != nil {
		return fmt.Errorf("command terminated: %w", err)
	}
	if dir != "" {
		if err := os.Chdir(dir); err != nil {
			return fmt.Errorf("working directory %s: %w", dir, err)
		}
	}
	return sandbox.ExecInPod(pn, path, argv, env)
}

// defaultPath is the PATH of a command when the container's is unknown
// (containerd's default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// nodePidRecord is the part of the node's StateDir/pids/<pid> records
// (package node, pids.go) exec reads.
type nodePidRecord struct {
	PID       int    `json:"pid"`
	UID       string `json:"uid"`
	Container string `json:"container"`
}

// containerProcessEnv is the environment and working directory of a
// running process of the container (nil when none is found).
func containerProcessEnv(stateDir string, pod *corev1.Pod, container string) ([]string, string) {
	uid := string(pod.UID)
	entries, err := os.ReadDir(filepath.Join(stateDir, "pids"))
	if err != nil {
		return nil, ""
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(stateDir, "pids", e.Name()))
		if err != nil {
			continue
		}
		var r nodePidRecord
		if json.Unmarshal(b, &r) != nil || r.UID != uid || r.Container != container || r.PID <= 0 {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", r.PID))
		if err != nil {
			continue
		}
		// The record's process, not one that reused its pid: it carries
		// the pod's name and namespace in its environment.
		env := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if envLookup(env, "SWITCHBOARD_POD_NAME") != pod.Name || envLookup(env, "SWITCHBOARD_POD_NAMESPACE") != pod.Namespace {
			continue
		}
		dir, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", r.PID))
		return env, dir
	}
	return nil, ""
}

func envLookup(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == name {
			return v
		}
	}
	return ""
}

// lookCommand finds argv0 as the node does for a container's command:
// "switchboard" is this binary, a name with "/" is a path, any other is
// looked up in the container's PATH.
func lookCommand(argv0, pathEnv, dir string) (string, error) {
	if argv0 == "switchboard" {
		return os.Executable()
	}
	check := func(p string) error {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			return err
		case fi.IsDir():
			return fmt.Errorf("%s: is a directory", p)
		case fi.Mode()&0o111 == 0:
			return fmt.Errorf("%s: permission denied", p)
		}
		return nil
	}
	if strings.Contains(argv0, "/") {
		p := argv0
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		return p, check(p)
	}
	if pathEnv == "" {
		pathEnv = defaultPath
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, argv0)
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", argv0)
}
