// Package sandbox owns a pod's network sandbox on this node: the address
// (or addresses) a pod gets, and how a container's process is placed into
// the pod's network. The node (package node) calls Setup before it starts
// a pod's first container, Prepare on every process it starts for the pod
// (containers, exec probes, exec hooks) and Teardown once the pod's last
// process has stopped.
//
// Two kinds: Loopback (every pod gets its own address inside 127.0.0.0/8,
// no root needed) and NetNS (root: a network namespace per pod attached to
// a bridge in the node's own network namespace by the CNI plugin through
// libcni, and per pod a mount namespace with its resolv.conf and hosts and
// a UTS namespace with its hostname, entered by re-executing the binary as
// ExecHelperName). Beside them: Relay publishes a port of a namespace on
// a socket of the caller's (publish.go), Fabric joins several node
// namespaces over VXLAN or host-gw routes (fabric.go), and PodNamespaces /
// ExecInPod let `switchboard exec` enter a pod (podexec.go). This package
// never starts or kills processes, never
// writes pod status and never programs the host's own network namespace.
package sandbox

import (
	"context"
	"net/netip"
	"os/exec"

	corev1 "k8s.io/api/core/v1"
)

// Network is what a pod's sandbox gives it: the pod's addresses (at most
// one per IP family, the primary first, as status.podIPs) and the node's
// address as the pod sees it (status.hostIP).
type Network struct {
	IPs    []netip.Addr
	HostIP netip.Addr
}

// Sandbox sets up and tears down pods' network sandboxes.
type Sandbox interface {
	// Name is the kind of sandbox: "loopback" or "netns".
	Name() string
	// Setup creates the pod's sandbox, or returns the existing one: it is
	// idempotent per pod UID.
	Setup(ctx context.Context, pod *corev1.Pod) (Network, error)
	// Prepare adapts a command (a container's process, an exec probe, an
	// exec hook) so that it runs inside the pod's sandbox. Called before
	// cmd.Start; it may change cmd.Path, Args, Env or SysProcAttr but keeps
	// what the caller set (process group, parent-death signal).
	Prepare(pod *corev1.Pod, cmd *exec.Cmd) error
	// Teardown removes the pod's sandbox and releases its addresses. It is
	// idempotent: tearing down an unknown pod is not an error.
	Teardown(ctx context.Context, pod *corev1.Pod) error
	// PodCIDR is the range pods' addresses come from (spec.podCIDR of the
	// node).
	PodCIDR() netip.Prefix
}
