package plugin

import (
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/switchboard-dev/switchboard/cni/ipam"
)

// TypeName is the plugin's "type" and binary name.
const TypeName = "switchboard"

// DefaultBridge is the bridge used when the config names none.
const DefaultBridge = "cni0"

// NetConf is the plugin's configuration.
type NetConf struct {
	types.PluginConf
	BridgeName       string `json:"bridge"`
	IsGateway        *bool  `json:"isGateway,omitempty"`
	IsDefaultGateway bool   `json:"isDefaultGateway,omitempty"`
	ForceAddress     bool   `json:"forceAddress,omitempty"`
	IPMasq           bool   `json:"ipMasq,omitempty"`
	IPMasqBackend    string `json:"ipMasqBackend,omitempty"`
	MTU              int    `json:"mtu,omitempty"`
	HairpinMode      *bool  `json:"hairpinMode,omitempty"`
	PromiscMode      bool   `json:"promiscMode,omitempty"`

	// Fields of the reference bridge we refuse (code 2) when set.
	Vlan                      int             `json:"vlan,omitempty"`
	VlanTrunk                 json.RawMessage `json:"vlanTrunk,omitempty"`
	MacSpoofChk               bool            `json:"macspoofchk,omitempty"`
	EnableDad                 bool            `json:"enabledad,omitempty"`
	DisableContainerInterface bool            `json:"disableContainerInterface,omitempty"`
	PortIsolation             bool            `json:"portIsolation,omitempty"`

	// IPAMConf is the "ipam" object when its type is ours (in-process).
	IPAMConf *ipam.Config `json:"-"`
}

// gateway and hairpin with their defaults applied.
func (n *NetConf) gateway() bool { return n.IsGateway == nil || *n.IsGateway }
func (n *NetConf) hairpin() bool { return n.HairpinMode == nil || *n.HairpinMode }

// inProcessIPAM reports whether the IPAM is ours (run without exec).
func (n *NetConf) inProcessIPAM() bool { return n.IPAMConf != nil }

// ParseConfig decodes and validates a plugin configuration, parses
// prevResult when present, and returns *types.Error with spec codes.
func ParseConfig(stdin []byte) (*NetConf, error) {
	n := &NetConf{}
	if err := json.Unmarshal(stdin, n); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decoding network config", err.Error())
	}
	unsupported := func(name string, val any) error {
		return types.NewError(types.ErrUnsupportedField, fmt.Sprintf("unsupported field %s=%v", name, val),
			"the switchboard plugin does not implement "+name+"; use the reference bridge plugin for it")
	}
	switch {
	case n.Vlan != 0:
		return nil, unsupported("vlan", n.Vlan)
	case len(n.VlanTrunk) > 0 && string(n.VlanTrunk) != "null" && string(n.VlanTrunk) != "[]":
		return nil, unsupported("vlanTrunk", string(n.VlanTrunk))
	case n.MacSpoofChk:
		return nil, unsupported("macspoofchk", true)
	case n.EnableDad:
		return nil, unsupported("enabledad", true)
	case n.DisableContainerInterface:
		return nil, unsupported("disableContainerInterface", true)
	case n.PortIsolation:
		return nil, unsupported("portIsolation", true)
	case n.IPMasqBackend != "" && n.IPMasqBackend != "nftables":
		return nil, unsupported("ipMasqBackend", n.IPMasqBackend)
	}
	var errs field.ErrorList
	if n.BridgeName == "" {
		n.BridgeName = DefaultBridge
	}
	if len(n.BridgeName) > 15 {
		errs = append(errs, field.TooLong(field.NewPath("bridge"), n.BridgeName, 15))
	}
	if n.MTU < 0 || n.MTU > 65535 || (n.MTU > 0 && n.MTU < 68) {
		errs = append(errs, field.Invalid(field.NewPath("mtu"), n.MTU, "must be 0 (kernel default) or between 68 and 65535"))
	}
	if n.IsDefaultGateway && !n.gateway() {
		errs = append(errs, field.Invalid(field.NewPath("isDefaultGateway"), true, "needs isGateway"))
	}
	switch n.IPAM.Type {
	case "", ipam.TypeName:
		var raw struct {
			IPAM *ipam.Config `json:"ipam"`
		}
		if err := json.Unmarshal(stdin, &raw); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "decoding network config", err.Error())
		}
		if raw.IPAM == nil {
			errs = append(errs, field.Required(field.NewPath("ipam"), "the plugin needs addresses"))
			break
		}
		raw.IPAM.Network = n.Name
		if err := raw.IPAM.Canonicalize(field.NewPath("ipam")); err != nil {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid network config", err.Error())
		}
		n.IPAMConf = raw.IPAM
	}
	if len(errs) > 0 {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid network config", errs.ToAggregate().Error())
	}
	if n.RawPrevResult != nil {
		if err := version.ParsePrevResult(&n.PluginConf); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "decoding prevResult", err.Error())
		}
	}
	return n, nil
}

// prevResult returns the prevResult as a current result, or nil.
func (n *NetConf) prevResult() (*current.Result, error) {
	if n.PrevResult == nil {
		return nil, nil
	}
	r, err := current.NewResultFromResult(n.PrevResult)
	if err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "converting prevResult", err.Error())
	}
	return r, nil
}

var _ = netlink.LinkNotFoundError{}
