package ipvs

import (
	"context"
	"log/slog"

	"github.com/switchboard-dev/switchboard/serviceproxy"
	"github.com/switchboard-dev/switchboard/serviceproxy/iptables"
)

// tools runs the commands a sync needs (ipset(8), iptables-restore and
// -save, conntrack(8)), in the calling thread's network namespace. Tests
// substitute a recorder.
type tools interface {
	listSets(ctx context.Context) (sets map[string]kernelSet, missing bool, err error)
	ipsetRestore(ctx context.Context, data []byte) error
	iptablesSave(ctx context.Context, ipv6 bool) ([]byte, error)
	iptablesRestore(ctx context.Context, data []byte, ipv6 bool) error
	removeChains(ctx context.Context, ipv6 bool, chains map[string][]string) error
	cleanConntrack(ctx context.Context, state *serviceproxy.State)
}

// execTools runs the real commands; the iptables and conntrack parts are
// the iptables mode's (serviceproxy/iptables).
type execTools struct {
	legacy bool
	log    *slog.Logger
}

func (e execTools) listSets(ctx context.Context) (map[string]kernelSet, bool, error) {
	return listSets(ctx)
}

func (e execTools) ipsetRestore(ctx context.Context, data []byte) error {
	return runIPSetRestore(ctx, data)
}

func (e execTools) iptablesSave(ctx context.Context, ipv6 bool) ([]byte, error) {
	return iptables.Save(ctx, "", ipv6, e.legacy)
}

func (e execTools) iptablesRestore(ctx context.Context, data []byte, ipv6 bool) error {
	return iptables.RestoreNoFlush(ctx, data, ipv6, e.legacy)
}

func (e execTools) removeChains(ctx context.Context, ipv6 bool, chains map[string][]string) error {
	return iptables.RemoveChains(ctx, ipv6, e.legacy, chains)
}

func (e execTools) cleanConntrack(ctx context.Context, state *serviceproxy.State) {
	iptables.CleanStaleUDPConntrack(ctx, state, e.log)
}
