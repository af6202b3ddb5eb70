// Command switchboard is Kubernetes networking in one binary. This file
// only builds the command tree; every command lives in its own package.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cli"
	"github.com/switchboard-dev/switchboard/cni/cnicmd"
	"github.com/switchboard-dev/switchboard/demo"
	"github.com/switchboard-dev/switchboard/dns/dnscmd"
	"github.com/switchboard-dev/switchboard/ingress/ingresscmd"
	"github.com/switchboard-dev/switchboard/node/sandbox"
	_ "github.com/switchboard-dev/switchboard/serviceproxy/modes/all" // every proxy mode
	"github.com/switchboard-dev/switchboard/serviceproxy/proxycmd"
	"github.com/switchboard-dev/switchboard/standalone"
)

func main() {
	// Called by a container runtime as a CNI plugin (binary named
	// switchboard or switchboard-ipam in a CNI bin dir, CNI_COMMAND set):
	// speak the CNI protocol on stdin/stdout, nothing else.
	if cnicmd.IsPluginInvocation(os.Args[0], os.Getenv) {
		cnicmd.Main()
		return
	}
	var (
		stateDir, server, kubeconfig string
		logLevel                     string
	)
	root := &cobra.Command{
		Use:           "switchboard",
		Short:         "Kubernetes networking in one binary",
		SilenceErrors: true,
		Version:       standalone.Version,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&stateDir, "state-dir", os.Getenv("SWITCHBOARD_STATE_DIR"), "state directory of the node (lock, api.sock, pod logs); default $SWITCHBOARD_STATE_DIR, /run/switchboard as root, else $XDG_RUNTIME_DIR/switchboard or /tmp/switchboard-UID")
	pf.StringVar(&server, "server", "", "talk to the local API over TCP at this URL instead of the state directory's socket")
	pf.StringVar(&kubeconfig, "kubeconfig", "", "talk to a real Kubernetes API server with this kubeconfig")
	pf.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")

	logger := func() *slog.Logger {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
			lvl = slog.LevelInfo
		}
		l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
		slog.SetDefault(l)
		return l
	}

	opts := &cli.Options{StateDir: &stateDir, Server: &server, Kubeconfig: &kubeconfig}
	root.AddCommand(standalone.NewUpCommand(&stateDir, cli.DefaultStateDir, logger))
	root.AddCommand(standalone.NewDownCommand())
	root.AddCommand(cli.NewCommands(opts, os.Stdout, os.Stderr)...)
	root.AddCommand(demo.NewCommand())
	root.AddCommand(dnscmd.NewCommand(cli.DefaultStateDir))
	root.AddCommand(proxycmd.NewCommand())
	root.AddCommand(ingresscmd.NewCommand())
	root.AddCommand(cnicmd.NewCommand())
	root.AddCommand(sandbox.NewExecHelperCommand()) // hidden: starts a container inside its pod's namespaces

	if err := root.Execute(); err != nil {
		// The kubectl-style commands print their own errors in kubectl's
		// words; everything else is printed here.
		if !errors.Is(err, cli.ErrReported) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}
