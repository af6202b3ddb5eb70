package plugin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/switchboard-dev/switchboard/cni/cnitest"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// needRoot skips tests that create namespaces, bridges and veths.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: runs CNI plugins through libcni in network namespaces it creates (uid %d)", os.Geteuid())
	}
}

// bins builds the CNI bin dir once per test process.
func bins(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "sbcni-bin-")
		if binErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			binErr = cnitest.BuildBinDir(ctx, binDir)
		}
	})
	if binErr != nil {
		t.Fatalf("CNI bin dir: %v", binErr)
	}
	return binDir
}

// newNS creates a namespace removed when t ends.
func newNS(t *testing.T, name string) *cnitest.NetNS {
	t.Helper()
	n, closeFn, err := cnitest.NewNetNS(name)
	t.Cleanup(func() {
		if err := closeFn(); err != nil {
			t.Errorf("removing namespace: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	return n
}

// env is one node namespace with a libcni runtime and an IPAM data dir.
type env struct {
	node    *cnitest.NetNS
	rt      *cnitest.Runtime
	dataDir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	needRoot(t)
	bin := bins(t)
	node := newNS(t, "node")
	return &env{node: node, rt: cnitest.NewRuntime(node, bin, t.TempDir()), dataDir: t.TempDir()}
}

// ourConf is a switchboard network config list.
func (e *env) ourConf(t *testing.T, version, name, extra string) *libcni.NetworkConfigList {
	t.Helper()
	if extra != "" && !strings.HasPrefix(extra, ",") {
		extra = "," + extra
	}
	js := fmt.Sprintf(`{"cniVersion": %q, "name": %q, "plugins": [{
	  "type": "switchboard", "bridge": "sbcni0", "mtu": 1400 %s,
	  "ipam": {"type": "switchboard-ipam", "dataDir": %q,
	           "ranges": [[{"subnet": "10.88.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]},
	  "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"], "options": ["ndots:5"]}
	}]}`, version, name, extra, e.dataDir)
	return confList(t, js)
}

func confList(t *testing.T, js string) *libcni.NetworkConfigList {
	t.Helper()
	l, err := libcni.NetworkConfFromBytes([]byte(js))
	if err != nil {
		t.Fatalf("conf list: %v\n%s", err, js)
	}
	return l
}

// addrFiles lists the allocation files of network under the data dir.
func addrFiles(t *testing.T, dataDir, network string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dataDir, network))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip.") {
			out = append(out, e.Name())
		}
	}
	return out
}
