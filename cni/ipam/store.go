package ipam

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"
)

// LockTimeout bounds the wait for another process's lock; after it the
// operation fails with code 11 (try again later).
var LockTimeout = 10 * time.Second

const (
	lockFile     = "lock"
	lastReserved = "last_reserved_ip."
	attachDir    = "attach"
	lineSep      = "\r\n"
)

// store is one network's directory, locked for the life of the value.
type store struct {
	dir  string
	lock *os.File
}

// openStore creates DataDir/network if needed and takes its lock.
func openStore(c *Config) (*store, error) {
	dir := filepath.Join(c.DataDir, c.Network)
	if err := os.MkdirAll(filepath.Join(dir, attachDir), 0o755); err != nil {
		return nil, types.NewError(types.ErrIOFailure, "creating IPAM data dir", err.Error())
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, "opening IPAM lock", err.Error())
	}
	deadline := time.Now().Add(LockTimeout)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &store{dir: dir, lock: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, types.NewError(types.ErrIOFailure, "locking IPAM data dir", err.Error())
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, types.NewError(types.ErrTryAgainLater, "IPAM data dir is locked by another process", dir)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Close releases the lock.
func (s *store) Close() error { return s.lock.Close() }

func attachKey(id, ifname string) string {
	h := sha256.Sum256([]byte(id + "\x00" + ifname))
	return hex.EncodeToString(h[:16])
}

func owner(id, ifname string) string { return id + lineSep + ifname }

// reserve creates the file of a; false when a is taken.
func (s *store) reserve(a net.IP, id, ifname string, rangeSet int) (bool, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, a.String()), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.WriteString(owner(id, ifname))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return false, err
	}
	return true, os.WriteFile(filepath.Join(s.dir, lastReserved+fmt.Sprint(rangeSet)), []byte(a.String()), 0o644)
}

func (s *store) lastReserved(rangeSet int) net.IP {
	b, err := os.ReadFile(filepath.Join(s.dir, lastReserved+fmt.Sprint(rangeSet)))
	if err != nil {
		return nil
	}
	return net.ParseIP(strings.TrimSpace(string(b)))
}

// writeAttachment records the addresses of (id, ifname).
func (s *store) writeAttachment(id, ifname string, ips []net.IP) error {
	var b strings.Builder
	b.WriteString(owner(id, ifname))
	for _, a := range ips {
		b.WriteString(lineSep + a.String())
	}
	return os.WriteFile(filepath.Join(s.dir, attachDir, attachKey(id, ifname)), []byte(b.String()), 0o644)
}

// attachment returns the addresses recorded for (id, ifname), and
// whether a record exists.
func (s *store) attachment(id, ifname string) ([]net.IP, bool) {
	b, err := os.ReadFile(filepath.Join(s.dir, attachDir, attachKey(id, ifname)))
	if err != nil {
		return nil, false
	}
	lines := strings.Split(string(b), lineSep)
	if len(lines) < 2 || lines[0] != id || lines[1] != ifname {
		return nil, false
	}
	var ips []net.IP
	for _, l := range lines[2:] {
		if a := net.ParseIP(l); a != nil {
			ips = append(ips, a)
		}
	}
	return ips, true
}

// ownedBy reports whether the file of address a belongs to (id, ifname).
func (s *store) ownedBy(a net.IP, id, ifname string) bool {
	b, err := os.ReadFile(filepath.Join(s.dir, a.String()))
	return err == nil && strings.TrimSpace(string(b)) == owner(id, ifname)
}

// allocation is one address file found by scan.
type allocation struct {
	IP          net.IP
	ContainerID string
	IfName      string
}

// scan lists every address file of the network.
func (s *store) scan() ([]allocation, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []allocation
	for _, e := range entries {
		a := net.ParseIP(e.Name())
		if a == nil || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			continue
		}
		id, ifname, _ := strings.Cut(strings.TrimSpace(string(b)), lineSep)
		out = append(out, allocation{IP: a, ContainerID: id, IfName: ifname})
	}
	return out, nil
}

// release removes every address of (id, ifname) and its record. It
// succeeds when there is nothing to remove.
func (s *store) release(id, ifname string) error {
	ips, ok := s.attachment(id, ifname)
	if !ok {
		// No record (written by another tool, or a crash between the
		// address file and the record): find the files by content.
		all, err := s.scan()
		if err != nil {
			return err
		}
		for _, a := range all {
			if a.ContainerID == id && a.IfName == ifname {
				ips = append(ips, a.IP)
			}
		}
	}
	var errs []error
	for _, a := range ips {
		if !s.ownedBy(a, id, ifname) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, a.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(filepath.Join(s.dir, attachDir, attachKey(id, ifname))); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
