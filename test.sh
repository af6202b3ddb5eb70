#!/usr/bin/env bash
# Runs every check and test of Switchboard, the way CI does (.ci/run calls
# this). On a fresh Debian machine with Go it first installs what the tests
# use: Debian packages (after one apt-get update, only when one is missing;
# needs root) and the Go modules (go mod download). Runs as root (the
# network-namespace tests run) or as a user (they skip, saying why).
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\n== %s\n' "$*"; }

# Debian packages the tests use as real peers: dig (bind9-dnsutils) and
# dnsperf for DNS; nft, iptables-save/-restore, ipset and conntrack for the
# service proxy; the reference CNI plugins (bridge, host-local, portmap,
# loopback under /usr/lib/cni); wrk and nginx for the ingress bench's
# quick run; BIND 9's named for the ingress's ACME DNS-01 tests (the
# zone's primary, started by the test on loopback); curl, ip, ps.
packages=(curl iproute2 procps bind9-dnsutils dnsperf nftables iptables ipset conntrack containernetworking-plugins wrk nginx bind9)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    # Packages with services (nginx, named) must not start them: the tests run
    # their own instances on loopback ports. policy-rc.d exit 101 is
    # Debian's "do not start services" switch.
    policy=/usr/sbin/policy-rc.d
    own_policy=
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [ -z "$own_policy" ] || rm -f "$policy"
  else
    echo "missing Debian packages (${missing[*]}); run as root once, or: sudo apt-get install ${missing[*]}" >&2
  fi
fi

say "Go modules"
go mod download

# CoreDNS itself, the peer the DNS tests compare answers with (built from
# its Go module into .bin/, once; about two minutes the first time).
coredns_version=v1.14.1
if [ ! -x .bin/coredns ] || ! .bin/coredns -version 2>/dev/null | grep -q "CoreDNS-${coredns_version#v}"; then
  say "building CoreDNS ${coredns_version} into .bin/ (the DNS tests' peer)"
  mkdir -p .bin
  (cd .bin && GOFLAGS=-mod=mod GOBIN="$PWD" go install "github.com/coredns/coredns@${coredns_version}")
fi

# The cluster-mode tests' control plane: kube-apiserver and etcd, built from
# their Go modules in tools/k8s (a module of its own) into .bin/, once.
say "kube-apiserver and etcd into .bin/ (the cluster-mode tests' API server; built once)"
tools/k8s/build.sh

say "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

say "go vet"
go vet ./...

say "go build"
go build -o /dev/null ./cmd/switchboard

say "go test"
go test -count=1 -timeout 20m "$@" ./...

say "all tests passed"
