package standalone

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// down removes the namespaces a killed `up --network netns` left, and
// leaves alone those of a node whose lock a running up holds.
func TestDownRemovesLeftoversOfNodesNotRunning(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces (run as root, as CI does)")
	}
	dead := fmt.Sprintf("down%d", rand.IntN(1_000_000))
	alive := dead + "x"
	var made []string
	mk := func(name string) {
		path, err := sandbox.CreateNamedNetNS(name)
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, path)
	}
	t.Cleanup(func() {
		for _, p := range made {
			_ = sandbox.RemoveNamedNetNS(p)
		}
	})
	deadNode := sandbox.NodeNamespaceName(dead)
	for _, n := range []string{deadNode, deadNode + "-p-uid1", sandbox.NodeNamespaceName(dead + "-1"), sandbox.FabricNamespaceName(dead)} {
		mk(n)
	}
	aliveNode := sandbox.NodeNamespaceName(alive)
	mk(aliveNode)
	mk(aliveNode + "-p-uid2")
	// A running up holds its node's lock.
	if err := os.MkdirAll(nodeLockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lockPath := filepath.Join(nodeLockDir, aliveNode+".lock")
	lf, err := lockNode(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(lockPath); unix.Flock(int(lf.Fd()), unix.LOCK_UN); lf.Close() })

	var out strings.Builder
	if err := Down(&out, []string{dead, alive}); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(sandbox.NetnsDir, name))
		return err == nil
	}
	for _, n := range []string{deadNode, deadNode + "-p-uid1", sandbox.NodeNamespaceName(dead + "-1"), sandbox.FabricNamespaceName(dead)} {
		if exists(n) {
			t.Errorf("%s left after down", n)
		}
	}
	for _, n := range []string{aliveNode, aliveNode + "-p-uid2"} {
		if !exists(n) {
			t.Errorf("%s (a running node's) removed by down", n)
		}
	}
	if !strings.Contains(out.String(), aliveNode+": in use") || !strings.Contains(out.String(), "removed 4 network namespaces") {
		t.Errorf("output:\n%s", out.String())
	}
}
