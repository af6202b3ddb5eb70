package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Backend is the iptables backend: which kernel API iptables-restore and
// iptables-save program.
type Backend string

const (
	// BackendAuto detects the backend on the first sync, with
	// iptables-wrapper's rule (see DetectBackend). "" means the same.
	BackendAuto Backend = "auto"
	// BackendNFT is iptables-nft (iptables-nft-restore/-save): rules in
	// nf_tables tables "ip filter" / "ip nat".
	BackendNFT Backend = "nft"
	// BackendLegacy is iptables-legacy (iptables-legacy-restore/-save):
	// rules in the kernel's x_tables.
	BackendLegacy Backend = "legacy"
)

// Backends lists the values Config.Backend (and kube-proxy
// --iptables-backend) accepts.
var Backends = []Backend{BackendAuto, BackendNFT, BackendLegacy}

// ParseBackend checks a --iptables-backend value ("" is auto).
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(strings.ToLower(strings.TrimSpace(s))); b {
	case "", BackendAuto:
		return BackendAuto, nil
	case BackendNFT, BackendLegacy:
		return b, nil
	}
	return "", fmt.Errorf("iptables backend %q: must be one of auto, nft, legacy", s)
}

// The chains kubelet (1.17 and later) creates in the mangle table, which
// iptables-wrapper looks for first: "In kubernetes 1.17 and later, kubelet
// will have created at least one chain in the "mangle" table (either
// "KUBE-IPTABLES-HINT" or "KUBE-KUBELET-CANARY")".
var hintChains = []string{"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"}

// backendSaves is what DetectBackend reads: iptables-wrapper's inputs.
type backendSaves struct {
	nftMangle []byte // iptables-nft-save -t mangle, ip6tables-nft-save -t mangle
	nftAll    []byte // iptables-nft-save, ip6tables-nft-save
	legacyAll []byte // iptables-legacy-save, ip6tables-legacy-save (never "-t": it would create the table)
}

// hasHintChain tells whether save output declares one of kubelet's hint
// chains.
func hasHintChain(save []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, ":") {
			continue
		}
		for _, c := range hintChains {
			if strings.HasPrefix(line, ":"+c+" ") {
				return true
			}
		}
	}
	return false
}

// countRules counts rule lines ("-A ...") in save output, as the
// wrapper's "grep '^-' | wc -l".
func countRules(save []byte) int {
	n := 0
	for _, line := range bytes.Split(save, []byte("\n")) {
		if len(line) > 0 && line[0] == '-' {
			n++
		}
	}
	return n
}

// chooseBackend is the decision, on what the saves showed:
//
//  1. kubelet's hint chains in iptables-nft's mangle table: nft; then in
//     iptables-legacy's tables: legacy (iptables-wrapper's DetectMode,
//     checked in that order);
//  2. otherwise the backend holding more rules (the wrapper's earlier
//     rule, "num_legacy_lines" against "num_nft_lines"), which finds our
//     own rules again after a restart;
//  3. otherwise, no rules anywhere (a fresh namespace) or as many in
//     both: nft ("If we can't detect any of the 2 patterns, default to
//     nft.").
func chooseBackend(s backendSaves) (Backend, string) {
	if hasHintChain(s.nftMangle) {
		return BackendNFT, "kubelet's hint chain (KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY) is in iptables-nft's mangle table"
	}
	if hasHintChain(s.legacyAll) {
		return BackendLegacy, "kubelet's hint chain (KUBE-IPTABLES-HINT or KUBE-KUBELET-CANARY) is in iptables-legacy's tables"
	}
	nft, legacy := countRules(s.nftAll), countRules(s.legacyAll)
	switch {
	case legacy > nft:
		return BackendLegacy, fmt.Sprintf("iptables-legacy holds more rules (%d) than iptables-nft (%d)", legacy, nft)
	case nft > legacy:
		return BackendNFT, fmt.Sprintf("iptables-nft holds more rules (%d) than iptables-legacy (%d)", nft, legacy)
	case nft == 0:
		return BackendNFT, "no iptables rules in either backend: nft, iptables-wrapper's default"
	default:
		return BackendNFT, fmt.Sprintf("both backends hold %d rules: nft, iptables-wrapper's default", nft)
	}
}

// saveQuiet runs a save command, returning its output or nil on any
// failure (a missing binary, a kernel without the API): as the wrapper,
// detection is best effort.
func saveQuiet(ctx context.Context, name string, args ...string) []byte {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // the wrapper's "timeout 5" for nft
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return nil
	}
	return out
}

// DetectBackend chooses the iptables backend for the network namespace
// of the calling thread as kube-proxy's images do with iptables-wrapper
// (kubernetes-sigs/iptables-wrappers): the backend the node already uses
// wins, nft when nothing tells. It returns the choice and why. It only
// reads (iptables-legacy-save is run without "-t", which would create
// the table).
func DetectBackend(ctx context.Context) (Backend, string) {
	var s backendSaves
	s.nftMangle = append(saveQuiet(ctx, "iptables-nft-save", "-t", "mangle"), saveQuiet(ctx, "ip6tables-nft-save", "-t", "mangle")...)
	s.nftAll = append(saveQuiet(ctx, "iptables-nft-save"), saveQuiet(ctx, "ip6tables-nft-save")...)
	s.legacyAll = append(saveQuiet(ctx, "iptables-legacy-save"), saveQuiet(ctx, "ip6tables-legacy-save")...)
	return chooseBackend(s)
}

// configuredBackend is the backend Config asks for (BackendAuto when it
// asks for detection).
func (c Config) configuredBackend() (Backend, error) {
	b, err := ParseBackend(string(c.Backend))
	if err != nil {
		return "", err
	}
	if c.Legacy {
		if b == BackendNFT {
			return "", errors.New("iptables: backend: nft contradicts Legacy")
		}
		b = BackendLegacy
	}
	return b, nil
}

// resolveBackend returns the backend the proxier uses, detecting it on
// first use under auto; p.mu is held.
func (p *Proxier) resolveBackend(ctx context.Context) Backend {
	if p.backend != "" {
		return p.backend
	}
	if p.want != BackendAuto {
		p.backend = p.want
		return p.backend
	}
	b, why := DetectBackend(ctx)
	p.log.Info("iptables backend detected", "backend", string(b), "reason", why)
	p.backend = b
	return b
}

// Backend is the backend in use: the configured one, or the detected one
// once a sync has detected it ("" before, under auto).
func (p *Proxier) Backend() Backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.backend == "" && p.want != BackendAuto {
		return p.want
	}
	return p.backend
}
