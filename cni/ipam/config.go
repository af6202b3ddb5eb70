package ipam

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ip"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// TypeName is the IPAM type this package answers to, and the name of
	// the plugin binary (a link to switchboard) in a CNI bin dir.
	TypeName = "switchboard-ipam"
	// DefaultDataDir holds the allocations when the config names none.
	DefaultDataDir = "/var/lib/switchboard/cni/networks"
)

// Range is one contiguous block of addresses of a subnet.
type Range struct {
	Subnet     types.IPNet `json:"subnet"`
	RangeStart net.IP      `json:"rangeStart,omitempty"`
	RangeEnd   net.IP      `json:"rangeEnd,omitempty"`
	Gateway    net.IP      `json:"gateway,omitempty"`
}

// RangeSet is a list of ranges of one family; an attachment gets one
// address from each range set.
type RangeSet []Range

// Route is a route handed to the container; GW empty means the gateway of
// the first range set of the same family.
type Route struct {
	Dst types.IPNet `json:"dst"`
	GW  net.IP      `json:"gw,omitempty"`
}

// Config is the "ipam" object of a network configuration.
type Config struct {
	Type    string     `json:"type"`
	Ranges  []RangeSet `json:"ranges,omitempty"`
	Routes  []Route    `json:"routes,omitempty"`
	DataDir string     `json:"dataDir,omitempty"`
	// Subnet, RangeStart, RangeEnd and Gateway are host-local's
	// single-range shorthand; they become Ranges[0].
	Subnet     *types.IPNet `json:"subnet,omitempty"`
	RangeStart net.IP       `json:"rangeStart,omitempty"`
	RangeEnd   net.IP       `json:"rangeEnd,omitempty"`
	Gateway    net.IP       `json:"gateway,omitempty"`

	// Network is the network name (the config's "name"); allocations live
	// in DataDir/Network.
	Network string `json:"-"`
}

// NetConf is the part of a network configuration this package reads.
type NetConf struct {
	types.PluginConf
	IPAM *Config `json:"ipam"`
}

// ParseNetConf decodes a plugin configuration and its "ipam" object,
// fills defaults and validates it. Errors are *types.Error: code 6 when
// the JSON does not decode, 7 when a field is invalid (naming the field).
func ParseNetConf(stdin []byte) (*NetConf, error) {
	var nc NetConf
	if err := json.Unmarshal(stdin, &nc); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decoding network config", err.Error())
	}
	if nc.IPAM == nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid network config", field.Required(field.NewPath("ipam"), "").Error())
	}
	nc.IPAM.Network = nc.Name
	if err := nc.IPAM.Canonicalize(field.NewPath("ipam")); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid network config", err.Error())
	}
	return &nc, nil
}

// Canonicalize fills defaults (range start/end/gateway, data dir) and
// validates c; fld is the path of the ipam object for error messages.
func (c *Config) Canonicalize(fld *field.Path) error {
	var errs field.ErrorList
	if c.Subnet != nil {
		if len(c.Ranges) > 0 {
			errs = append(errs, field.Invalid(fld.Child("subnet"), ipnStr(*c.Subnet), "give either subnet or ranges, not both"))
		} else {
			c.Ranges = []RangeSet{{{Subnet: *c.Subnet, RangeStart: c.RangeStart, RangeEnd: c.RangeEnd, Gateway: c.Gateway}}}
		}
	}
	if len(c.Ranges) == 0 {
		errs = append(errs, field.Required(fld.Child("ranges"), "at least one range set"))
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	} else if !filepath.IsAbs(c.DataDir) {
		errs = append(errs, field.Invalid(fld.Child("dataDir"), c.DataDir, "must be an absolute path"))
	}
	if c.Network == "" {
		errs = append(errs, field.Required(field.NewPath("name"), "the network name names the allocation directory"))
	}
	for i := range c.Ranges {
		rsPath := fld.Child("ranges").Index(i)
		if len(c.Ranges[i]) == 0 {
			errs = append(errs, field.Required(rsPath, "a range set needs at least one range"))
			continue
		}
		var family int
		for j := range c.Ranges[i] {
			r := &c.Ranges[i][j]
			rp := rsPath.Index(j)
			if err := r.canonicalize(rp); err != nil {
				errs = append(errs, err)
				continue
			}
			f := familyOf(r.Subnet.IP)
			if j == 0 {
				family = f
			} else if f != family {
				errs = append(errs, field.Invalid(rp.Child("subnet"), ipnStr(r.Subnet), "all ranges of a range set must be of one IP family"))
			}
			for k := 0; k < j; k++ {
				if c.Ranges[i][k].overlaps(r) {
					errs = append(errs, field.Invalid(rp, r.String(), fmt.Sprintf("overlaps range %d", k)))
				}
			}
		}
		for k := 0; k < i && len(c.Ranges[i]) > 0; k++ {
			for _, a := range c.Ranges[k] {
				for _, b := range c.Ranges[i] {
					if a.overlaps(&b) {
						errs = append(errs, field.Invalid(rsPath, b.String(), fmt.Sprintf("overlaps range set %d", k)))
					}
				}
			}
		}
	}
	for i, r := range c.Routes {
		rp := fld.Child("routes").Index(i)
		if r.Dst.IP == nil {
			errs = append(errs, field.Required(rp.Child("dst"), ""))
			continue
		}
		if r.GW != nil && familyOf(r.GW) != familyOf(r.Dst.IP) {
			errs = append(errs, field.Invalid(rp.Child("gw"), r.GW.String(), "not of the family of dst"))
		}
	}
	return errs.ToAggregate()
}

func familyOf(a net.IP) int {
	if a.To4() != nil {
		return 4
	}
	return 6
}

func (r *Range) String() string {
	return fmt.Sprintf("%s-%s", r.RangeStart, r.RangeEnd)
}

func (r *Range) canonicalize(fld *field.Path) *field.Error {
	if r.Subnet.IP == nil {
		return field.Required(fld.Child("subnet"), "")
	}
	if v4 := r.Subnet.IP.To4(); v4 != nil {
		r.Subnet.IP = v4
		if len(r.Subnet.Mask) == net.IPv6len {
			r.Subnet.Mask = r.Subnet.Mask[12:]
		}
	}
	ones, bits := r.Subnet.Mask.Size()
	if bits == 0 {
		return field.Invalid(fld.Child("subnet"), ipnStr(r.Subnet), "invalid mask")
	}
	if bits-ones < 2 {
		return field.Invalid(fld.Child("subnet"), ipnStr(r.Subnet), "network too small to allocate from")
	}
	if !r.Subnet.IP.Equal(r.Subnet.IP.Mask(r.Subnet.Mask)) {
		return field.Invalid(fld.Child("subnet"), ipnStr(r.Subnet), "has host bits set; use "+(&net.IPNet{IP: r.Subnet.IP.Mask(r.Subnet.Mask), Mask: r.Subnet.Mask}).String())
	}
	sub := (*net.IPNet)(&r.Subnet)
	norm := func(a net.IP, name string) (net.IP, *field.Error) {
		if a == nil {
			return nil, nil
		}
		if v4 := a.To4(); v4 != nil && familyOf(sub.IP) == 4 {
			a = v4
		}
		if !sub.Contains(a) {
			return nil, field.Invalid(fld.Child(name), a.String(), "not in subnet "+sub.String())
		}
		return a, nil
	}
	var err *field.Error
	if r.RangeStart, err = norm(r.RangeStart, "rangeStart"); err != nil {
		return err
	}
	if r.RangeEnd, err = norm(r.RangeEnd, "rangeEnd"); err != nil {
		return err
	}
	if r.Gateway, err = norm(r.Gateway, "gateway"); err != nil {
		return err
	}
	network := sub.IP
	if r.Gateway == nil {
		r.Gateway = ip.NextIP(network)
	}
	if r.RangeStart == nil {
		r.RangeStart = ip.NextIP(network)
	}
	if r.RangeEnd == nil {
		last := lastIP(sub)
		if familyOf(network) == 4 {
			last = ip.PrevIP(last) // the broadcast address
		}
		r.RangeEnd = last
	}
	if ip.Cmp(r.RangeStart, r.RangeEnd) > 0 {
		return field.Invalid(fld.Child("rangeEnd"), r.RangeEnd.String(), "before rangeStart "+r.RangeStart.String())
	}
	return nil
}

func (r *Range) contains(a net.IP) bool {
	return ip.Cmp(a, r.RangeStart) >= 0 && ip.Cmp(a, r.RangeEnd) <= 0
}

func (r *Range) overlaps(o *Range) bool {
	if familyOf(r.Subnet.IP) != familyOf(o.Subnet.IP) {
		return false
	}
	return r.contains(o.RangeStart) || r.contains(o.RangeEnd) || o.contains(r.RangeStart) || o.contains(r.RangeEnd)
}

func lastIP(n *net.IPNet) net.IP {
	out := make(net.IP, len(n.IP))
	for i := range n.IP {
		out[i] = n.IP[i] | ^n.Mask[i]
	}
	return out
}

func ipnStr(n types.IPNet) string { return (*net.IPNet)(&n).String() }
