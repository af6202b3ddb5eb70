// Package cnicmd is the entry point of the switchboard CNI plugin binary:
// Main runs one CNI command (read from CNI_COMMAND and stdin, as
// skel.PluginMainFuncs does) and NewCommand wraps it as "switchboard cni".
//
// One binary serves two plugin types:
//   - "switchboard" (package cni/plugin): the bridge main plugin with
//     in-process IPAM;
//   - "switchboard-ipam" (package cni/ipam): the IPAM alone, for other
//     plugins (e.g. the reference bridge) to delegate to. Install it as a
//     link named switchboard-ipam to the switchboard binary in the CNI bin
//     dir. The binary answers as IPAM when its name is "switchboard-ipam",
//     or when the config's "type" is not "switchboard" while its
//     "ipam.type" is "switchboard-ipam" (the delegating plugin passes its
//     own config, as the spec requires).
//
// This package owns only the dispatch; it creates nothing itself.
package cnicmd

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cni/ipam"
	"github.com/switchboard-dev/switchboard/cni/plugin"
)

// About is printed on stderr when the binary runs without CNI_COMMAND.
const About = "Switchboard CNI plugin: types \"switchboard\" (bridge) and \"switchboard-ipam\" (host-local style IPAM)"

// IsPluginInvocation reports whether a process started as argv0 with
// this environment is a CNI runtime calling a plugin: CNI_COMMAND is set
// and the binary is named switchboard or switchboard-ipam.
func IsPluginInvocation(argv0 string, getenv func(string) string) bool {
	if getenv("CNI_COMMAND") == "" {
		return false
	}
	switch filepath.Base(argv0) {
	case plugin.TypeName, ipam.TypeName:
		return true
	}
	return false
}

// Funcs returns the CNI commands of the binary named argv0, dispatching
// each call to the bridge plugin or to the IPAM by argv0 and the config.
func Funcs(argv0 string) skel.CNIFuncs {
	p, i := plugin.Funcs(), ipam.PluginFuncs()
	pick := func(pf, ipf func(*skel.CmdArgs) error) func(*skel.CmdArgs) error {
		return func(args *skel.CmdArgs) error {
			if asIPAM(argv0, args.StdinData) {
				return ipf(args)
			}
			return pf(args)
		}
	}
	return skel.CNIFuncs{
		Add:    pick(p.Add, i.Add),
		Del:    pick(p.Del, i.Del),
		Check:  pick(p.Check, i.Check),
		GC:     pick(p.GC, i.GC),
		Status: pick(p.Status, i.Status),
	}
}

func asIPAM(argv0 string, stdin []byte) bool {
	if filepath.Base(argv0) == ipam.TypeName {
		return true
	}
	var c struct {
		Type string `json:"type"`
		IPAM struct {
			Type string `json:"type"`
		} `json:"ipam"`
	}
	if json.Unmarshal(stdin, &c) != nil {
		return false // the plugin reports the decoding error
	}
	return c.Type != plugin.TypeName && c.IPAM.Type == ipam.TypeName
}

// Main runs the CNI command given by the environment and exits non-zero
// with the error JSON on stdout when it fails. It supports every spec
// version up to 1.1.0 (version.All).
func Main() {
	skel.PluginMainFuncs(Funcs(os.Args[0]), version.All, About)
}

// NewCommand returns "switchboard cni": the plugin run by hand or by a
// runtime that calls "switchboard cni" (CNI_COMMAND etc. in the
// environment, the config on stdin).
func NewCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cni",
		Short: "Run as a CNI 1.1 plugin (bridge + IPAM); reads CNI_* variables and the config on stdin",
		Long: About + `

Install it in a CNI bin dir as "switchboard", and as a link named
"switchboard-ipam" for plugins that delegate their IPAM to it. Run with
CNI_COMMAND=VERSION to see the supported spec versions.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			// Dispatch by the binary's own name as runtimes see it
			// ("switchboard"), not by the subcommand.
			skel.PluginMainFuncs(Funcs(plugin.TypeName), version.All, About)
			return nil
		},
	}
}
