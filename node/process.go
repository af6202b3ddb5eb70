package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/internal/spawn"
)

// Container state reasons, as kubelet and containerd write them.
const (
	reasonContainerCreating          = "ContainerCreating"
	reasonPodInitializing            = "PodInitializing"
	reasonCrashLoopBackOff           = "CrashLoopBackOff"
	reasonCreateContainerConfigError = "CreateContainerConfigError"
	reasonCreateContainerError       = "CreateContainerError"
	reasonRunContainerError          = "RunContainerError"
	reasonPostStartHookError         = "PostStartHookError"
	reasonCompleted                  = "Completed"
	reasonError                      = "Error"
	reasonStartError                 = "StartError"

	// exitCodeStartError is what containerd reports for a container whose
	// process could not be started.
	exitCodeStartError = 128

	// Termination message bounds, kubelet's
	// MaxContainerTerminationMessageLength and ...LogLines/LogLength.
	maxTerminationMessage        = 4096
	maxTerminationMessageLogLine = 80
	maxTerminationMessageLogSize = 2048
)

// instance is one run of a container: one host process group.
type instance struct {
	id           string // switchboard://<pod-uid>/<container>/<restartCount>
	restartCount int32
	spec         *corev1.Container // the spec it was started from
	logPath      string
	pid          int // the process and its process group
	startedAt    time.Time
	launchedAt   time.Time // just before the process was started
	env          []string  // for exec probes and hooks
	workDir      string

	exited   chan struct{} // closed once the process has been reaped
	logsDone chan struct{} // closed once its output has been written
	logs     *logFile

	// Set before exited is closed.
	finishedAt time.Time
	exitCode   int32
	signal     int32
	reason     string
	message    string

	// Guarded by the pod worker's mu.
	checkedAgainst *corev1.Pod // the pod version spec was last found equal to
	ready          bool        // the readiness probe succeeded
	startupOK      bool        // the startup probe succeeded
	livenessFailed bool
	startupFailed  bool
	killing        bool
}

func (i *instance) isExited() bool {
	select {
	case <-i.exited:
		return true
	default:
		return false
	}
}

func (i *instance) terminatedState() *corev1.ContainerStateTerminated {
	if !i.isExited() {
		return nil
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    i.exitCode,
		Signal:      i.signal,
		Reason:      i.reason,
		Message:     i.message,
		StartedAt:   metaTime(i.startedAt),
		FinishedAt:  metaTime(i.finishedAt),
		ContainerID: i.id,
	}
}

func metaTime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t)
}

// containerID is the node's container ID for an instance.
func containerID(pod *corev1.Pod, container string, restartCount int32) string {
	return fmt.Sprintf("switchboard://%s/%s/%d", pod.UID, container, restartCount)
}

// parseContainerID splits a container ID into pod UID, container name and
// restart count.
func parseContainerID(id string) (uid, container string, restart int32, ok bool) {
	rest, found := strings.CutPrefix(id, "switchboard://")
	if !found {
		return "", "", 0, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return "", "", 0, false
	}
	r, err := strconv.ParseInt(parts[2], 10, 32)
	if err != nil || r < 0 {
		return "", "", 0, false
	}
	return parts[0], parts[1], int32(r), true
}

// podLogDir is kubelet's pod log directory: <ns>_<pod>_<uid>.
func (n *Node) podLogDir(namespace, name, uid string) string {
	return filepath.Join(n.cfg.StateDir, "pods", namespace+"_"+name+"_"+uid)
}

func (n *Node) logPath(namespace, name, uid, container string, restart int32) string {
	return filepath.Join(n.podLogDir(namespace, name, uid), container, strconv.Itoa(int(restart))+".log")
}

// resolveCommand finds the executable for argv[0]: "switchboard" is the
// node's own binary (Config.Executable); a name without "/" is looked up
// in the container's PATH, as a container runtime does.
func (n *Node) resolveCommand(argv0, pathEnv, dir string) (string, error) {
	if argv0 == "switchboard" {
		return n.cfg.Executable, nil
	}
	if strings.Contains(argv0, "/") {
		p := argv0
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("exec: %q: %w", argv0, err)
		}
		return argv0, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, argv0)
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", argv0)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file or directory")
		}
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}

func envValue(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// procAttr puts a process in its own process group (so that its children
// are signalled with it) and has the kernel kill it when the node dies:
// processes with it are started by spawn.Start, from a thread that lives
// as long as the node (the kernel sends Pdeathsig when the creating
// thread ends, and the netns sandbox ends threads).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// startContainer starts one instance of a container (kubelet's
// startContainer): build its configuration, create the process, record
// it, run the postStart hook.
func (w *podWorker) startContainer(pod *corev1.Pod, spec *corev1.Container, c *ctrState, kind startKind) {
	n := w.n
	ctype := "container"
	if kind == startInit {
		ctype = "init_container"
	}
	w.mu.Lock()
	net := podNetInfo{PodIPs: w.net.IPs}
	if w.net.HostIP.IsValid() {
		net.HostIPs = append(net.HostIPs, w.net.HostIP)
	}
	restart := c.next
	w.mu.Unlock()

	fail := func(reason, msg string) {
		n.metrics.startedContainersErrors.WithLabelValues(reason, ctype).Inc()
		n.event(pod, corev1.EventTypeWarning, "Failed", "Error: %s", msg)
		n.log.Warn("container start failed", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name, "reason", reason, "err", msg)
	}

	// Configuration: environment, command, working directory.
	envl, cmdMap, err := n.makeEnvironment(pod, spec, net)
	if err != nil {
		w.mu.Lock()
		c.waiting = &corev1.ContainerStateWaiting{Reason: reasonCreateContainerConfigError, Message: err.Error()}
		c.retryAt = time.Now().Add(n.cfg.BackoffInitial)
		w.wakeAtLocked(c.retryAt)
		w.mu.Unlock()
		n.metrics.startedContainers.WithLabelValues(ctype).Inc()
		fail(reasonCreateContainerConfigError, err.Error())
		return
	}
	mapping := mappingFor(cmdMap)
	var argv []string
	for _, s := range spec.Command {
		argv = append(argv, expand(s, mapping))
	}
	for _, s := range spec.Args {
		argv = append(argv, expand(s, mapping))
	}
	if len(argv) == 0 {
		// There is no image whose entrypoint could run.
		w.mu.Lock()
		c.waiting = &corev1.ContainerStateWaiting{Reason: reasonCreateContainerError, Message: "no command specified: containers run host processes, so command (or args) is required"}
		c.retryAt = time.Now().Add(n.cfg.BackoffInitial)
		w.wakeAtLocked(c.retryAt)
		w.mu.Unlock()
		n.metrics.startedContainers.WithLabelValues(ctype).Inc()
		fail(reasonCreateContainerError, "no command specified")
		return
	}
	env := envl.Strings()

	inst := &instance{
		id:           containerID(pod, spec.Name, restart),
		restartCount: restart,
		spec:         spec.DeepCopy(),
		logPath:      n.logPath(pod.Namespace, pod.Name, string(pod.UID), spec.Name, restart),
		env:          env,
		workDir:      spec.WorkingDir,
		exited:       make(chan struct{}),
		logsDone:     make(chan struct{}),
	}
	n.metrics.startedContainers.WithLabelValues(ctype).Inc()

	// The log file of this instance; only the previous instance's is kept.
	if err := os.MkdirAll(filepath.Dir(inst.logPath), 0o755); err != nil {
		w.startFailed(pod, spec, c, inst, reasonCreateContainerError, err.Error(), false)
		fail(reasonCreateContainerError, err.Error())
		return
	}
	pruneLogs(filepath.Dir(inst.logPath), restart)
	lf, err := os.OpenFile(inst.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		w.startFailed(pod, spec, c, inst, reasonCreateContainerError, err.Error(), false)
		fail(reasonCreateContainerError, err.Error())
		return
	}
	inst.logs = &logFile{f: lf}
	n.event(pod, corev1.EventTypeNormal, "Created", "Created container %s", spec.Name)

	path, err := n.resolveCommand(argv[0], envValue(env, "PATH"), spec.WorkingDir)
	if err != nil {
		lf.Close()
		w.startFailed(pod, spec, c, inst, reasonRunContainerError, err.Error(), true)
		fail(reasonRunContainerError, err.Error())
		return
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: env, Dir: spec.WorkingDir, SysProcAttr: procAttr()}
	if err := n.cfg.Sandbox.Prepare(pod, cmd); err != nil {
		lf.Close()
		w.startFailed(pod, spec, c, inst, reasonRunContainerError, err.Error(), true)
		fail(reasonRunContainerError, err.Error())
		return
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		lf.Close()
		w.startFailed(pod, spec, c, inst, reasonRunContainerError, err.Error(), true)
		fail(reasonRunContainerError, err.Error())
		return
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		lf.Close()
		outR.Close()
		outW.Close()
		w.startFailed(pod, spec, c, inst, reasonRunContainerError, err.Error(), true)
		fail(reasonRunContainerError, err.Error())
		return
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	inst.launchedAt = time.Now()
	err = spawn.Start(cmd)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		lf.Close()
		msg := err.Error()
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Op == "chdir" {
			msg = fmt.Sprintf("chdir to cwd (%q) set in config.json failed: %v", spec.WorkingDir, pe.Err)
		}
		w.startFailed(pod, spec, c, inst, reasonRunContainerError, msg, true)
		fail(reasonRunContainerError, msg)
		return
	}
	inst.pid = cmd.Process.Pid
	inst.startedAt = time.Now()
	n.recordPid(pod, spec.Name, inst.pid)

	var copiers sync.WaitGroup
	copiers.Add(2)
	go func() { defer copiers.Done(); inst.logs.copyFrom(outR, "stdout") }()
	go func() { defer copiers.Done(); inst.logs.copyFrom(errR, "stderr") }()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		w.reap(pod, spec, cmd, inst, &copiers, outR, errR)
	}()

	w.mu.Lock()
	c.prev, c.cur = c.cur, inst
	if c.prev != nil && !c.prev.isExited() {
		c.prev = nil // never: a new instance starts only once the old one exited
	}
	c.next = restart + 1
	c.waiting = nil
	c.retryAt = time.Time{}
	w.mu.Unlock()
	n.event(pod, corev1.EventTypeNormal, "Started", "Started container %s", spec.Name)
	w.notifyProbes()
	w.poke()

	// postStart runs right after the process started; on failure the
	// container is killed and restarted per the restart policy.
	if spec.Lifecycle != nil && spec.Lifecycle.PostStart != nil {
		msg, err := w.runHook(context.Background(), pod, spec, inst, spec.Lifecycle.PostStart, "PostStart", 0)
		if err != nil {
			n.event(pod, corev1.EventTypeWarning, "FailedPostStartHook", "%s", msg)
			n.metrics.startedContainersErrors.WithLabelValues(reasonPostStartHookError, ctype).Inc()
			w.mu.Lock()
			inst.killing = true
			w.mu.Unlock()
			w.killInstance(pod, spec, inst, "FailedPostStartHook", containerGrace(pod, spec, killPostStart), -1)
			w.mu.Lock()
			c.waiting = &corev1.ContainerStateWaiting{Reason: reasonPostStartHookError, Message: msg}
			w.mu.Unlock()
		}
	}
}

// startFailed records an instance that never ran. With asInstance it
// counts as a run, as containerd reports one: terminated with exit code
// 128 and reason StartError, so that restarts back off.
func (w *podWorker) startFailed(pod *corev1.Pod, spec *corev1.Container, c *ctrState, inst *instance, reason, msg string, asInstance bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	if !asInstance {
		c.retryAt = time.Now().Add(w.n.cfg.BackoffInitial)
		w.wakeAtLocked(c.retryAt)
		return
	}
	inst.finishedAt = time.Now()
	inst.exitCode = exitCodeStartError
	inst.reason = reasonStartError
	inst.message = msg
	close(inst.exited)
	close(inst.logsDone)
	if c.cur != nil && c.cur.isExited() {
		c.prev = c.cur
	}
	c.cur = inst
	c.next = inst.restartCount + 1
	w.poke()
	// The caller (a sync) signals the probe workers when it ends.
}

// reap waits for an instance's process, kills what is left of its process
// group (a container's processes end with it), collects its output and
// records how it ended.
func (w *podWorker) reap(pod *corev1.Pod, spec *corev1.Container, cmd *exec.Cmd, inst *instance, copiers *sync.WaitGroup, outR, errR *os.File) {
	_ = cmd.Wait()
	finished := time.Now()
	_ = killGroup(inst.pid, unix.SIGKILL)
	// Output still buffered in the pipes is copied; a process that left
	// the group and holds the pipe open does not hold us up for long.
	done := make(chan struct{})
	go func() { copiers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		outR.Close()
		errR.Close()
		<-done
	}
	outR.Close()
	errR.Close()
	inst.logs.close()
	w.n.waitGroupGone(inst.pid, 5*time.Second)
	w.n.forgetPid(inst.pid)

	st := cmd.ProcessState
	var code, sig int32
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig = int32(ws.Signal())
		code = 128 + sig
	} else {
		code = int32(st.ExitCode())
	}
	reason := reasonCompleted
	if code != 0 {
		reason = reasonError
	}
	msg := terminationMessage(spec, inst, code)

	w.mu.Lock()
	inst.finishedAt = finished
	inst.exitCode = code
	inst.signal = sig
	inst.reason = reason
	inst.message = msg
	close(inst.exited)
	w.mu.Unlock()
	close(inst.logsDone)
	w.n.log.Debug("container exited", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name, "exitCode", code)
	w.notifyProbes()
	w.poke()
}

// terminationMessage is kubelet's: the file at terminationMessagePath when
// the container wrote one during this run (host processes have no
// private /dev/termination-log, so the default path is rarely writable),
// else with FallbackToLogsOnError and a failure the tail of the log.
func terminationMessage(spec *corev1.Container, inst *instance, code int32) string {
	if p := spec.TerminationMessagePath; p != "" {
		// Written during this run: file times come from the kernel's
		// coarse clock, which may lag a few milliseconds.
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && !fi.ModTime().Before(inst.launchedAt.Add(-20*time.Millisecond)) {
			if f, err := os.Open(p); err == nil {
				b, _ := io.ReadAll(io.LimitReader(f, maxTerminationMessage))
				f.Close()
				if len(b) > 0 {
					return string(b)
				}
			}
		}
	}
	if spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError && code != 0 {
		var b strings.Builder
		tail := int64(maxTerminationMessageLogLine)
		_ = streamLogFile(context.Background(), inst.logPath, LogOptions{TailLines: &tail}, nil, &b)
		s := b.String()
		if len(s) > maxTerminationMessageLogSize {
			s = s[len(s)-maxTerminationMessageLogSize:]
		}
		return s
	}
	return ""
}

// stopSignal is SIGTERM unless the container's lifecycle names another.
func stopSignal(spec *corev1.Container) unix.Signal {
	if spec != nil && spec.Lifecycle != nil && spec.Lifecycle.StopSignal != nil {
		if s := unix.SignalNum(string(*spec.Lifecycle.StopSignal)); s != 0 {
			return s
		}
	}
	return unix.SIGTERM
}

// killInstance stops one instance as kubelet's killContainer: an event
// Killing, the preStop hook (bounded by the grace period, whose elapsed
// part it uses up), the stop signal to the process group, at least the
// minimum grace period ("always give containers a minimal shutdown window
// to avoid unnecessary SIGKILLs"), then SIGKILL. hardCap >= 0 caps the
// wait (node shutdown). It returns once the process has been reaped.
func (w *podWorker) killInstance(pod *corev1.Pod, spec *corev1.Container, inst *instance, message string, grace int64, hardCap time.Duration) {
	if inst.isExited() {
		return
	}
	n := w.n
	if message == "" {
		message = fmt.Sprintf("Stopping container %s", spec.Name)
	}
	n.event(pod, corev1.EventTypeNormal, "Killing", "%s", message)
	if hardCap >= 0 && time.Duration(grace)*time.Second > hardCap {
		grace = int64((hardCap + time.Second - 1) / time.Second)
	}
	wait := time.Duration(grace) * time.Second
	if spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil && grace > 0 {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		msg, err := w.runHook(ctx, pod, spec, inst, spec.Lifecycle.PreStop, "PreStop", wait)
		cancel()
		if err != nil {
			n.event(pod, corev1.EventTypeWarning, "FailedPreStopHook", "%s", msg)
		}
		wait -= time.Duration(int64(time.Since(began).Seconds())) * time.Second
	}
	if wait < minimumGracePeriod {
		wait = minimumGracePeriod
	}
	if hardCap >= 0 && wait > hardCap {
		wait = hardCap
	}
	_ = killGroup(inst.pid, stopSignal(spec))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-inst.exited:
		return
	case <-t.C:
	}
	n.log.Info("container did not stop within its grace period: killing it", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name, "grace", wait)
	_ = killGroup(inst.pid, unix.SIGKILL)
	for {
		select {
		case <-inst.exited:
			return
		case <-time.After(10 * time.Second):
			n.log.Warn("container still running after SIGKILL", "pod", pod.Namespace+"/"+pod.Name, "container", spec.Name, "pid", inst.pid)
			_ = killGroup(inst.pid, unix.SIGKILL)
		}
	}
}

// execInContainer runs cmd in a container's context (its environment,
// working directory and sandbox) for exec probes and hooks, killing its
// process group when ctx ends. It returns the combined output (at most
// 16 KiB) and the exit code.
func (w *podWorker) execInContainer(ctx context.Context, pod *corev1.Pod, inst *instance, argv []string) ([]byte, int, error) {
	if len(argv) == 0 {
		return nil, -1, errors.New("empty command")
	}
	path, err := w.n.resolveCommand(argv[0], envValue(inst.env, "PATH"), inst.workDir)
	if err != nil {
		return nil, -1, err
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = inst.env
	cmd.Dir = inst.workDir
	cmd.SysProcAttr = procAttr()
	out := &limitedBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := w.n.cfg.Sandbox.Prepare(pod, cmd); err != nil {
		return nil, -1, err
	}
	if err := spawn.Start(cmd); err != nil {
		return nil, -1, err
	}
	err = cmd.Wait()
	_ = killGroup(cmd.Process.Pid, unix.SIGKILL) // what the command left behind
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.Bytes(), ee.ExitCode(), nil
		}
		if ctx.Err() != nil {
			return out.Bytes(), -1, ctx.Err()
		}
		return out.Bytes(), -1, err
	}
	return out.Bytes(), 0, nil
}

type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - len(b.buf); room > 0 {
		if len(p) > room {
			b.buf = append(b.buf, p[:room]...)
		} else {
			b.buf = append(b.buf, p...)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

// pruneLogs keeps only the previous instance's log beside the one about
// to be written (restart).
func pruneLogs(dir string, restart int32) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		r, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if int32(r) < restart-1 || int32(r) > restart {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// ---- CRI-format log files ----

// logFile is one instance's log in the CRI format kubelet reads:
// "<RFC3339Nano time> <stdout|stderr> <F|P> <text>", one line of output per
// line, P marking a partial line (longer than 16 KiB, or cut off at the
// end of the output).
type logFile struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
	notify notifier
}

const maxLogLine = 16 << 10

func (l *logFile) write(stream string, partial bool, text []byte) {
	tag := "F"
	if partial {
		tag = "P"
	}
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	buf := make([]byte, 0, len(ts)+len(stream)+len(text)+5)
	buf = append(buf, ts...)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, tag...)
	buf = append(buf, ' ')
	buf = append(buf, text...)
	buf = append(buf, '\n')
	l.mu.Lock()
	if !l.closed {
		_, _ = l.f.Write(buf)
	}
	l.mu.Unlock()
	l.notify.notify()
}

func (l *logFile) copyFrom(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			l.write(stream, false, line[:len(line)-1])
		case errors.Is(err, bufio.ErrBufferFull):
			l.write(stream, true, line)
		default:
			if len(line) > 0 {
				l.write(stream, false, line)
			}
			return
		}
	}
}

func (l *logFile) close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		_ = l.f.Close()
	}
	l.mu.Unlock()
	l.notify.notify()
}

// notifier wakes the followers of a log when it grows.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}
