package iptables

import (
	"context"
	"log/slog"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// Helpers for the other proxy modes that program iptables too
// (serviceproxy/ipvs): the exec paths Sync and Cleanup use. Like them,
// they act on the calling thread's network namespace.

// RestoreNoFlush feeds data to "iptables-restore --noflush --counters"
// (ip6tables-restore when ipv6; the -legacy variants when legacy): one
// atomic transaction per table. A failure's error holds the lines around
// the one iptables-restore complained about.
func RestoreNoFlush(ctx context.Context, data []byte, ipv6, legacy bool) error {
	return newTools(ipv6, backendOf(legacy)).runRestore(ctx, data)
}

// Save returns iptables-save output (ip6tables-save when ipv6) of one
// table, or of every table when table is "".
func Save(ctx context.Context, table string, ipv6, legacy bool) ([]byte, error) {
	return newTools(ipv6, backendOf(legacy)).runSave(ctx, table)
}

// RemoveChains flushes and deletes the named chains of each table
// ("filter", "nat") that exist, with every rule of other chains jumping
// to them (the jumps from the built-in chains), in one restore. Chains
// that do not exist are ignored.
func RemoveChains(ctx context.Context, ipv6, legacy bool, chains map[string][]string) error {
	t := newTools(ipv6, backendOf(legacy))
	data, err := t.runSave(ctx, "")
	if err != nil {
		return err
	}
	input := cleanupInputFor(parseSave(data), chains, nil)
	if input == nil {
		return nil
	}
	return t.runRestore(ctx, input)
}

// CleanStaleUDPConntrack is this mode's conntrack clean-up after a sync
// (upstream's conntrack.CleanStaleEntries, which every mode runs): UDP
// entries towards the state's StaleUDPEndpoints and towards the IPs of
// its StaleUDPServices are deleted with conntrack -D. Failures are
// logged.
func CleanStaleUDPConntrack(ctx context.Context, state *serviceproxy.State, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	(&Proxier{log: log}).cleanStaleConntrack(ctx, state)
}

// backendOf maps the helpers' legacy flag to a Backend.
func backendOf(legacy bool) Backend {
	if legacy {
		return BackendLegacy
	}
	return BackendNFT
}
