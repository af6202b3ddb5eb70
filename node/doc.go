// Package node is kubelet-lite: it runs the pods bound to this node as
// local processes inside a sandbox (package node/sandbox), runs their
// probes (package node/probe), keeps container logs, restarts containers
// with kubelet's back-off, and writes pod status and events back through
// the cluster.Store. It never decides where pods run (the scheduler in
// cluster/controllers does) and never touches Services or EndpointSlices.
//
// # How a pod runs
//
// A Node registers a corev1.Node (Ready heartbeat every 10 s, NotReady
// once it stops) and gives every pod whose spec.nodeName is its name a
// pod worker: one goroutine that syncs the pod's processes to its spec
// the way kubelet's SyncPod does, on every change of the pod, when a
// process exits, when a probe result changes, when a back-off or retry
// it scheduled is due, and at least every minute (kubelet's
// --sync-frequency). Probe workers (package node/probe) are told when
// their container changes, so a held or waiting worker does not poll,
// and their ticks share a 100 ms grid so that the probes of many pods
// run in a few batches per period rather than one wake-up each.
// The sandbox gives the pod its IP; init containers run one after the
// other (each must exit 0 first; init containers with restartPolicy
// Always are sidecars that keep running beside the main containers);
// then every container starts.
//
// A container is a host process: the image is not pulled and not used,
// so command (or args) is required. command[0] "switchboard" runs the
// node's own binary (Config.Executable), any other name is looked up in
// the container's PATH. $(VAR) references in command, args and env
// values are expanded as Kubernetes does ("$$" escapes). Each container
// runs in its own process group (so its children stop with it) with a
// parent-death signal; the groups are recorded under StateDir/pids so
// that the next run kills what a crashed node left behind.
//
// The environment holds PATH and HOME from the host, HOSTNAME (the pod's
// hostname), the service link variables kubelet adds, envFrom and env
// (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef), and:
//
//	SWITCHBOARD_POD_IP         the pod's IP (status.podIP)
//	SWITCHBOARD_POD_NAME       metadata.name
//	SWITCHBOARD_POD_NAMESPACE  metadata.namespace
//	SWITCHBOARD_NODE_NAME      spec.nodeName
//
// With the loopback sandbox every pod shares the host's network; a
// workload must bind its own address (SWITCHBOARD_POD_IP or
// status.podIP) rather than 0.0.0.0 for two pods to use the same port.
//
// Logs are kept as kubelet keeps them, in the CRI format under
// StateDir/pods/<namespace>_<pod>_<uid>/<container>/<restartCount>.log,
// the current and the previous instance only; StreamLogs serves them.
//
// Not done (yet): volumes (every container sees the host's filesystem),
// resource limits (no cgroups), container-level restartPolicyRules,
// ephemeral containers, image pulls, log rotation within one instance.
package node
