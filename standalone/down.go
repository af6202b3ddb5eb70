package standalone

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// Down removes what `up --network netns` runs left behind when they could
// not clean up (killed with SIGKILL, a power cut): the node, pod and
// fabric network namespaces of nodes that no running `up` holds. Nodes
// whose lock a running `up` holds are left alone and named. nodes limits
// it to those node names (and their fabrics); empty means every node.
func Down(out io.Writer, nodes []string) error {
	entries, err := os.ReadDir(sandbox.NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(out, "nothing to remove")
		return nil
	}
	if err != nil {
		return err
	}
	want := func(owner string) bool {
		if len(nodes) == 0 {
			return true
		}
		for _, n := range nodes {
			// The node itself, or the nodes NAME-1..N and the fabric of
			// `up --nodes N --node-name NAME`.
			base := sandbox.NodeNamespaceName(n)
			rest, ok := strings.CutPrefix(owner, base)
			if ok && (rest == "" || rest == "-fabric" || len(rest) > 1 && rest[0] == '-' && strings.Trim(rest[1:], "0123456789") == "") {
				return true
			}
		}
		return false
	}
	// Group namespaces by the node (or fabric) namespace that owns them.
	owned := map[string][]string{}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, sandbox.NodeNamespacePrefix) {
			continue
		}
		owner := name
		if i := strings.Index(name, "-p-"); i > 0 {
			owner = name[:i]
		}
		if want(owner) {
			owned[owner] = append(owned[owner], name)
		}
	}
	owners := make([]string, 0, len(owned))
	for o := range owned {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	removed := 0
	var errs []error
	for _, owner := range owners {
		if running(filepath.Join(nodeLockDir, owner+".lock")) {
			fmt.Fprintf(out, "%s: in use by a running `switchboard up` (stop it with Ctrl-C); left alone\n", owner)
			continue
		}
		// Pods first, the node (or fabric) namespace last.
		names := owned[owner]
		sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
		for _, n := range names {
			if err := sandbox.RemoveNamedNetNS(filepath.Join(sandbox.NetnsDir, n)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n, err))
				continue
			}
			removed++
		}
	}
	fmt.Fprintf(out, "removed %d network namespaces\n", removed)
	return errors.Join(errs...)
}

// running reports whether a running `up` holds the node lock at path.
func running(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false // no lock file: nobody runs this node
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// NewDownCommand returns `switchboard down`.
func NewDownCommand() *cobra.Command {
	var nodes []string
	cmd := &cobra.Command{
		Use:   "down [--node-name NAME ...]",
		Short: "Remove what a crashed `up --network netns` left (network namespaces of nodes no up runs)",
		Long: `down removes the node, pod and fabric network namespaces that a
` + "`switchboard up --network netns`" + ` could not remove itself (it was killed, the
machine lost power). Nodes a running up holds are left alone. The next up
of a node does the same for that node. Needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			return Down(cmd.OutOrStdout(), nodes)
		},
	}
	cmd.Flags().StringArrayVar(&nodes, "node-name", nil, "only this node (or cluster name of --nodes N); repeatable")
	return cmd
}
