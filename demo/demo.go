// Package demo holds the built-in demo workloads (`switchboard demo http |
// grpc | tcp-echo | udp-echo`) that examples and tests run as ordinary
// pod containers whose command is the switchboard binary. Each answers
// with the pod's identity, can be made to fail its health checks or exit
// on request (to exercise probes and restarts), logs to stdout, and stops
// cleanly on SIGTERM or SIGINT.
//
// The package owns only these small servers. It knows nothing of the node
// that runs them beyond the environment variables the node injects
// (SWITCHBOARD_POD_IP, SWITCHBOARD_POD_NAME, SWITCHBOARD_POD_NAMESPACE,
// SWITCHBOARD_NODE_NAME) and never talks to the cluster store.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
)

// Identity is who a demo server says it is.
type Identity struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Node      string `json:"node"`
	PodIP     string `json:"podIP"`
	Hostname  string `json:"hostname"`
}

// firstEnv returns the first non-empty variable of names.
func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// IdentityFromEnv reads the pod's identity from the downward-API names a
// manifest usually sets (POD_NAME, POD_NAMESPACE, NODE_NAME, POD_IP) or
// else from the SWITCHBOARD_ variables the node injects; the pod name
// falls back to the hostname.
func IdentityFromEnv() Identity {
	host, _ := os.Hostname()
	id := Identity{
		Pod:       firstEnv("POD_NAME", "SWITCHBOARD_POD_NAME"),
		Namespace: firstEnv("POD_NAMESPACE", "SWITCHBOARD_POD_NAMESPACE"),
		Node:      firstEnv("NODE_NAME", "SWITCHBOARD_NODE_NAME"),
		PodIP:     firstEnv("POD_IP", "SWITCHBOARD_POD_IP"),
		Hostname:  host,
	}
	if id.Pod == "" {
		id.Pod = host
	}
	return id
}

// DefaultHost is the address a demo binds when --host is not given: the
// pod's IP (POD_IP, then SWITCHBOARD_POD_IP), else 127.0.0.1.
func DefaultHost() string {
	if h := firstEnv("POD_IP", "SWITCHBOARD_POD_IP"); h != "" {
		return h
	}
	return "127.0.0.1"
}

// ExitCode is returned by a demo server asked to exit with a code
// (/control/exit, --exit-after); the command exits the process with it.
type ExitCode struct{ Code int }

func (e *ExitCode) Error() string { return "exit requested with code " + strconv.Itoa(e.Code) }

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// NewCommand returns `demo` with its subcommands http, grpc, tcp-echo and
// udp-echo.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a built-in demo workload (for pods whose command is the switchboard binary)",
		Long: `Built-in demo workloads for examples and tests. In a manifest they are ordinary
containers whose command is the switchboard binary, for example

  command: ["switchboard", "demo", "http", "--port", "8080"]

Each binds --host (default: $POD_IP, else $SWITCHBOARD_POD_IP, else 127.0.0.1),
answers with the pod's identity, logs to stdout and stops cleanly on SIGTERM.`,
	}
	cmd.AddCommand(newHTTPCommand(), newGRPCCommand(), newTCPEchoCommand(), newUDPEchoCommand())
	return cmd
}

// addrFlags registers --host and --port.
func addrFlags(cmd *cobra.Command, host *string, port *int, defPort int) {
	cmd.Flags().StringVar(host, "host", "", "address to bind (default $POD_IP, else $SWITCHBOARD_POD_IP, else 127.0.0.1)")
	cmd.Flags().IntVar(port, "port", defPort, "port to listen on (0 picks a free port)")
}

func hostPort(host string, port int) (string, error) {
	if port < 0 || port > 65535 {
		return "", fmt.Errorf("--port %d: must be between 0 and 65535", port)
	}
	if host == "" {
		host = DefaultHost()
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// signalContext ends on SIGTERM or SIGINT.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, syscall.SIGTERM, syscall.SIGINT)
}

// finish turns a server's result into the command's: an ExitCode exits
// the process with its code (what /control/exit asks for).
func finish(err error) error {
	var ec *ExitCode
	if errors.As(err, &ec) {
		os.Exit(ec.Code)
	}
	return err
}
