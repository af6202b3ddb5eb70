package ipam

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"
)

func conf(t *testing.T, js string) *Config {
	t.Helper()
	nc, err := ParseNetConf([]byte(fmt.Sprintf(`{"cniVersion": "1.1.0", "name": "net", "type": "x", "ipam": %s}`,
		strings.Replace(js, "DATADIR", t.TempDir(), 1))))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return nc.IPAM
}

func code(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, ipam, wantField string
		code                  uint
	}{
		{"no ranges", `{"type": "switchboard-ipam"}`, "ipam.ranges", 7},
		{"host bits set", `{"ranges": [[{"subnet": "10.0.0.1/24"}]]}`, "ipam.ranges[0][0].subnet", 7},
		{"too small (host-local: Network 192.168.0.0/31 too small to allocate from)", `{"ranges": [[{"subnet": "192.168.0.0/31"}]]}`, "ipam.ranges[0][0].subnet", 7},
		{"rangeStart outside", `{"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.5"}]]}`, "ipam.ranges[0][0].rangeStart", 7},
		{"end before start", `{"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.50", "rangeEnd": "10.0.0.10"}]]}`, "ipam.ranges[0][0].rangeEnd", 7},
		{"mixed families in a set", `{"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}]]}`, "ipam.ranges[0][1].subnet", 7},
		{"overlapping sets", `{"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/25"}]]}`, "ipam.ranges[1]", 7},
		{"relative dataDir", `{"dataDir": "rel", "ranges": [[{"subnet": "10.0.0.0/24"}]]}`, "ipam.dataDir", 7},
		{"route gw of other family", `{"ranges": [[{"subnet": "10.0.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0", "gw": "fd00::1"}]}`, "ipam.routes[0].gw", 7},
		{"not JSON", `{"ranges": [[`, "", 6},
		{"missing ipam", `null`, "ipam", 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseNetConf([]byte(`{"cniVersion": "1.1.0", "name": "n", "ipam": ` + c.ipam + `}`))
			if code(err) != c.code || !strings.Contains(fmt.Sprint(err), c.wantField) {
				t.Errorf("error %v, want code %d naming %q", err, c.code, c.wantField)
			}
		})
	}
}

func TestDefaultsAndShorthand(t *testing.T) {
	c := conf(t, `{"subnet": "10.1.0.0/29", "dataDir": "DATADIR"}`)
	r := c.Ranges[0][0]
	if r.RangeStart.String() != "10.1.0.1" || r.RangeEnd.String() != "10.1.0.6" || r.Gateway.String() != "10.1.0.1" {
		t.Errorf("defaults: start %s end %s gw %s, want .1 .6 (broadcast excluded) .1", r.RangeStart, r.RangeEnd, r.Gateway)
	}
}

// Allocation skips the gateway, goes round robin across releases (as
// host-local), exhausts with code 100, and frees on Release.
func TestAllocateReleaseRoundRobin(t *testing.T) {
	c := conf(t, `{"dataDir": "DATADIR", "ranges": [[{"subnet": "10.1.0.0/29"}]], "routes": [{"dst": "0.0.0.0/0"}]}`)
	var got []string
	for i := range 5 {
		res, err := Allocate(c, fmt.Sprint("c", i), "eth0")
		if err != nil {
			t.Fatalf("allocate %d: %v", i, err)
		}
		got = append(got, res.IPs[0].Address.String())
		if i == 0 && (len(res.Routes) != 1 || res.Routes[0].GW.String() != "10.1.0.1") {
			t.Errorf("routes %v, want default via the range gateway", res.Routes)
		}
	}
	if want := "10.1.0.2/29 10.1.0.3/29 10.1.0.4/29 10.1.0.5/29 10.1.0.6/29"; strings.Join(got, " ") != want {
		t.Errorf("allocated %v, want %s", got, want)
	}
	if _, err := Allocate(c, "c5", "eth0"); code(err) != ErrRangeFull {
		t.Errorf("allocate from a full range: %v, want code %d", err, ErrRangeFull)
	}
	if _, err := Allocate(c, "c0", "eth0"); code(err) != ErrAlreadyAllocated {
		t.Errorf("allocate twice for one attachment: %v, want code %d", err, ErrAlreadyAllocated)
	}
	for _, id := range []string{"c1", "c3"} {
		if err := Release(c, id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := Release(c, "c1", "eth0"); err != nil {
		t.Errorf("second release: %v", err)
	}
	res, err := Allocate(c, "c6", "eth0")
	if err != nil || res.IPs[0].Address.IP.String() != "10.1.0.3" {
		t.Errorf("after releasing .3 and .5 the next is .3 (wrapping from the last reserved): %v %v", res, err)
	}
	if err := Check(c, "c6", "eth0", nil); err != nil {
		t.Errorf("check: %v", err)
	}
	if err := Check(c, "c1", "eth0", nil); code(err) != ErrNotAllocated {
		t.Errorf("check of a released attachment: %v", err)
	}
}

// "Plugins must handle being executed concurrently across different
// containers. If necessary, they must implement locking on shared
// resources (e.g. IPAM databases)."
func TestConcurrentAllocationsAreUnique(t *testing.T) {
	c := conf(t, `{"dataDir": "DATADIR", "ranges": [[{"subnet": "10.2.0.0/24"}], [{"subnet": "fd00:2::/120"}]]}`)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				id := fmt.Sprintf("w%d-%d", w, i)
				res, err := Allocate(c, id, "eth0")
				if err != nil {
					t.Errorf("%s: %v", id, err)
					return
				}
				mu.Lock()
				for _, ipc := range res.IPs {
					if other, dup := seen[ipc.Address.IP.String()]; dup {
						t.Errorf("%s given to %s and %s", ipc.Address.IP, other, id)
					}
					seen[ipc.Address.IP.String()] = id
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 8*20*2 {
		t.Errorf("%d addresses, want %d (one v4 and one v6 each)", len(seen), 8*20*2)
	}
}

// A lock held past LockTimeout gives 11: "Try again later".
func TestLockTimeoutTryAgainLater(t *testing.T) {
	c := conf(t, `{"dataDir": "DATADIR", "ranges": [[{"subnet": "10.3.0.0/24"}]]}`)
	if err := Release(c, "x", "eth0"); err != nil { // creates the dir
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(c.DataDir, c.Network, lockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	old := LockTimeout
	LockTimeout = 50 * time.Millisecond
	t.Cleanup(func() { LockTimeout = old })
	if _, err := Allocate(c, "c", "eth0"); code(err) != types.ErrTryAgainLater {
		t.Errorf("allocate under a held lock: %v, want code 11", err)
	}
}

// "a plugin should remove any IPAM reservations associated with
// attachments not in the provided list"
func TestGCKeepsOnlyValid(t *testing.T) {
	c := conf(t, `{"dataDir": "DATADIR", "ranges": [[{"subnet": "10.4.0.0/24"}]]}`)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := Allocate(c, id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := GC(c, []types.GCAttachment{{ContainerID: "b", IfName: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	held, err := Allocated(c)
	if err != nil || len(held) != 1 || held[0].ContainerID != "b" {
		t.Errorf("after GC: %+v %v, want b only", held, err)
	}
	recs, _ := os.ReadDir(filepath.Join(c.DataDir, c.Network, attachDir))
	if len(recs) != 1 {
		t.Errorf("%d attachment records after GC, want 1", len(recs))
	}
}

func TestStatus(t *testing.T) {
	c := conf(t, `{"dataDir": "DATADIR", "ranges": [[{"subnet": "10.5.0.0/30"}]]}`)
	if err := Status(c); err != nil {
		t.Fatalf("status of an empty range: %v", err)
	}
	if _, err := Allocate(c, "a", "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := Status(c); code(err) != types.ErrPluginNotAvailable {
		t.Errorf("status of a full range: %v, want 50", err)
	}
}
