package file

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func writeZone(t *testing.T, path string, serial int, a string) {
	t.Helper()
	text := "$ORIGIN example.org.\n@ 300 IN SOA ns1.example.org. h.example.org. " + strconv.Itoa(serial) + " 7200 3600 1209600 300\n  300 IN NS ns1\nns1 300 IN A 192.0.2.53\nwww 300 IN A " + a + "\n"
	// Write to a temporary name and rename, as an editor or a git
	// checkout may; TestReloadInPlace covers writing in place.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func wwwA(z *Zone) string {
	e, ok := z.data.Load().tree.Search("www.example.org.")
	if !ok || len(e.Type(1)) == 0 {
		return ""
	}
	return e.Type(1)[0].String()
}

// TestReloadOnce: "reload interval to perform a reload of the zone if the
// SOA version changes".
func TestReloadOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	writeZone(t, path, 1, "192.0.2.1")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	z, err := Parse(f, "example.org.", path, 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	z.logger = discardLogger()
	if z.reloadOnce() {
		t.Error("reloaded a file with the same serial")
	}
	writeZone(t, path, 1, "192.0.2.2")
	if z.reloadOnce() || wwwA(z) != "www.example.org.\t300\tIN\tA\t192.0.2.1" {
		t.Errorf("a change without a new serial was loaded: %s", wwwA(z))
	}
	writeZone(t, path, 2, "192.0.2.3")
	if !z.reloadOnce() || wwwA(z) != "www.example.org.\t300\tIN\tA\t192.0.2.3" {
		t.Errorf("a new serial was not loaded: %s", wwwA(z))
	}
	// A broken file keeps the zone served.
	if err := os.WriteFile(path, []byte("garbage ( \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if z.reloadOnce() || wwwA(z) != "www.example.org.\t300\tIN\tA\t192.0.2.3" {
		t.Errorf("a broken file replaced the zone: %s", wwwA(z))
	}
	// So does a removed one.
	os.Remove(path)
	if z.reloadOnce() || wwwA(z) == "" {
		t.Error("a removed file emptied the zone")
	}
}

// TestReloadInPlace: the file changed in place (same inode) is seen, and
// a zone whose file was missing at start is loaded once it appears.
func TestReloadInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	z := NewZone("example.org.", path) // the file does not exist yet
	z.logger = discardLogger()
	z.ReloadInterval = 5 * time.Millisecond
	z.Start()
	t.Cleanup(z.Stop)

	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for wwwA(z) != want {
			if time.Now().After(deadline) {
				t.Fatalf("zone has %q, want %q", wwwA(z), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	text := func(serial, a string) []byte {
		return []byte("$ORIGIN example.org.\n@ 300 IN SOA ns1.example.org. h.example.org. " + serial + " 7200 3600 1209600 300\nwww 300 IN A " + a + "\n")
	}
	if err := os.WriteFile(path, text("1", "192.0.2.1"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait("www.example.org.\t300\tIN\tA\t192.0.2.1")
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(text("2", "192.0.2.2")); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	wait("www.example.org.\t300\tIN\tA\t192.0.2.2")
}

func TestStopWithoutStart(t *testing.T) {
	z := NewZone("example.org.", "x")
	z.Stop()
	z.Stop()
	z.Start() // after Stop: nothing runs
	z2 := NewZone("example.org.", "x")
	z2.ReloadInterval = time.Millisecond
	z2.Start()
	z2.Start()
	z2.Stop()
	z2.Stop()
}
