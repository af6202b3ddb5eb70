package ipam

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
)

// Error codes of this package above the spec's well-known ones.
const (
	// ErrRangeFull means a range set has no free address.
	ErrRangeFull uint = 100
	// ErrAlreadyAllocated means (containerID, ifname) already holds
	// addresses: the runtime called ADD twice without DEL.
	ErrAlreadyAllocated uint = 103
	// ErrNotAllocated is CHECK's answer when the attachment holds no (or
	// other) addresses.
	ErrNotAllocated uint = 104
)

// Allocate reserves one address from every range set of c for
// (containerID, ifname) and returns the abbreviated result an IPAM plugin
// returns (ips without "interface", routes, no interfaces). Either all
// addresses are reserved or none.
func Allocate(c *Config, containerID, ifname string) (*current.Result, error) {
	s, err := openStore(c)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if ips, ok := s.attachment(containerID, ifname); ok && len(ips) > 0 {
		return nil, types.NewError(ErrAlreadyAllocated, "attachment already has addresses",
			fmt.Sprintf("container %q interface %q holds %v in network %q", containerID, ifname, ips, c.Network))
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	var got []net.IP
	undo := func() {
		for _, a := range got {
			_ = os.Remove(filepath.Join(s.dir, a.String()))
		}
	}
	for i, rs := range c.Ranges {
		a, r, err := s.next(rs, i, containerID, ifname)
		if err != nil {
			undo()
			return nil, err
		}
		got = append(got, a)
		res.IPs = append(res.IPs, &current.IPConfig{
			Address: net.IPNet{IP: a, Mask: r.Subnet.Mask},
			Gateway: r.Gateway,
		})
	}
	if err := s.writeAttachment(containerID, ifname, got); err != nil {
		undo()
		return nil, types.NewError(types.ErrIOFailure, "writing IPAM attachment record", err.Error())
	}
	res.Routes = c.routes()
	return res, nil
}

// routes turns c.Routes into result routes, filling a missing gw with the
// gateway of the first range set of the route's family.
func (c *Config) routes() []*types.Route {
	var out []*types.Route
	for _, r := range c.Routes {
		gw := r.GW
		if gw == nil {
			for _, rs := range c.Ranges {
				if familyOf(rs[0].Subnet.IP) == familyOf(r.Dst.IP) {
					gw = rs[0].Gateway
					break
				}
			}
		}
		out = append(out, &types.Route{Dst: net.IPNet(r.Dst), GW: gw})
	}
	return out
}

// next reserves the first free address of rs after the last one reserved
// in it (round robin, so a released address is not handed out again at
// once).
func (s *store) next(rs RangeSet, idx int, id, ifname string) (net.IP, *Range, error) {
	start, ri := rs[0].RangeStart, 0
	if last := s.lastReserved(idx); last != nil {
		for i := range rs {
			if rs[i].contains(last) {
				start, ri = ip.NextIP(last), i
				if ip.Cmp(start, rs[i].RangeEnd) > 0 {
					ri = (i + 1) % len(rs)
					start = rs[ri].RangeStart
				}
				break
			}
		}
	}
	a := start
	for n := 0; n <= len(rs); n++ {
		r := &rs[(ri+n)%len(rs)]
		if n > 0 {
			a = r.RangeStart
		}
		for ; ip.Cmp(a, r.RangeEnd) <= 0; a = ip.NextIP(a) {
			if a.Equal(r.Gateway) {
				continue
			}
			ok, err := s.reserve(a, id, ifname, idx)
			if err != nil {
				return nil, nil, types.NewError(types.ErrIOFailure, "reserving address", err.Error())
			}
			if ok {
				return a, r, nil
			}
		}
	}
	// The first range may have addresses before start.
	r := &rs[ri]
	for a := r.RangeStart; ip.Cmp(a, start) < 0; a = ip.NextIP(a) {
		if a.Equal(r.Gateway) {
			continue
		}
		ok, err := s.reserve(a, id, ifname, idx)
		if err != nil {
			return nil, nil, types.NewError(types.ErrIOFailure, "reserving address", err.Error())
		}
		if ok {
			return a, r, nil
		}
	}
	return nil, nil, types.NewError(ErrRangeFull, "no free address", fmt.Sprintf("range set %d of network %q is exhausted", idx, s.dir))
}

// Release frees every address of (containerID, ifname). Releasing what is
// not allocated succeeds: "Plugins MUST accept multiple DEL calls for the
// same (CNI_CONTAINERID, CNI_IFNAME) pair".
func Release(c *Config, containerID, ifname string) error {
	s, err := openStore(c)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.release(containerID, ifname); err != nil {
		return types.NewError(types.ErrIOFailure, "releasing addresses", err.Error())
	}
	return nil
}

// Check verifies that (containerID, ifname) holds exactly want (when
// want is not empty) or at least one address of every range set.
func Check(c *Config, containerID, ifname string, want []net.IP) error {
	s, err := openStore(c)
	if err != nil {
		return err
	}
	defer s.Close()
	have, ok := s.attachment(containerID, ifname)
	if !ok || len(have) == 0 {
		return types.NewError(ErrNotAllocated, "no addresses allocated",
			fmt.Sprintf("container %q interface %q in network %q", containerID, ifname, c.Network))
	}
	for _, a := range have {
		if !s.ownedBy(a, containerID, ifname) {
			return types.NewError(ErrNotAllocated, "allocation lost", fmt.Sprintf("%s is not held by container %q interface %q", a, containerID, ifname))
		}
	}
	for _, w := range want {
		found := false
		for _, a := range have {
			found = found || a.Equal(w)
		}
		if !found {
			return types.NewError(ErrNotAllocated, "address not allocated", fmt.Sprintf("%s is not held by container %q interface %q (holds %v)", w, containerID, ifname, have))
		}
	}
	return nil
}

// Allocated lists the addresses held in c's network with their owners.
func Allocated(c *Config) ([]Allocation, error) {
	s, err := openStore(c)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	all, err := s.scan()
	out := make([]Allocation, len(all))
	for i, a := range all {
		out[i] = Allocation(a)
	}
	return out, err
}

// Allocation is one allocated address and its owner.
type Allocation struct {
	IP          net.IP
	ContainerID string
	IfName      string
}

// GC releases every allocation whose (containerID, ifname) is not in
// valid, and reports errors after trying all: "a plugin should remove any
// IPAM reservations associated with attachments not in the provided list".
func GC(c *Config, valid []types.GCAttachment) error {
	s, err := openStore(c)
	if err != nil {
		return err
	}
	defer s.Close()
	keep := make(map[types.GCAttachment]bool, len(valid))
	for _, v := range valid {
		keep[v] = true
	}
	all, err := s.scan()
	if err != nil {
		return types.NewError(types.ErrIOFailure, "listing allocations", err.Error())
	}
	var errs []error
	done := map[types.GCAttachment]bool{}
	for _, a := range all {
		k := types.GCAttachment{ContainerID: a.ContainerID, IfName: a.IfName}
		if keep[k] || done[k] {
			continue
		}
		done[k] = true
		if err := s.release(a.ContainerID, a.IfName); err != nil {
			errs = append(errs, err)
		}
	}
	// Records whose addresses are all gone.
	entries, _ := os.ReadDir(filepath.Join(s.dir, attachDir))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(s.dir, attachDir, e.Name()))
		if err != nil {
			continue
		}
		id, rest, _ := strings.Cut(string(b), lineSep)
		ifname, _, _ := strings.Cut(rest, lineSep)
		if !keep[types.GCAttachment{ContainerID: id, IfName: ifname}] {
			_ = os.Remove(filepath.Join(s.dir, attachDir, e.Name()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return types.NewError(types.ErrIOFailure, "releasing stale allocations", err.Error())
	}
	return nil
}

// Status reports whether an ADD could be served: the data dir is
// writable and every range set has a free address. It fails with code 50
// ("The plugin is not available (i.e. cannot service ADD requests)")
// otherwise.
func Status(c *Config) error {
	s, err := openStore(c)
	if err != nil {
		var te *types.Error
		if errors.As(err, &te) && te.Code == types.ErrTryAgainLater {
			return err
		}
		return types.NewError(types.ErrPluginNotAvailable, "IPAM data dir unusable", err.Error())
	}
	defer s.Close()
	for i, rs := range c.Ranges {
		if !s.hasFree(rs) {
			return types.NewError(types.ErrPluginNotAvailable, "no free address",
				fmt.Sprintf("range set %d of network %q is exhausted", i, c.Network))
		}
	}
	return nil
}

func (s *store) hasFree(rs RangeSet) bool {
	for i := range rs {
		r := &rs[i]
		for a := r.RangeStart; ip.Cmp(a, r.RangeEnd) <= 0; a = ip.NextIP(a) {
			if a.Equal(r.Gateway) {
				continue
			}
			if _, err := os.Lstat(filepath.Join(s.dir, a.String())); errors.Is(err, os.ErrNotExist) {
				return true
			}
		}
	}
	return false
}
