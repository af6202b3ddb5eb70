#!/usr/bin/env bash
# Builds the real control-plane peers of the cluster-mode tests into the
# repository's .bin/: kube-apiserver (k8s.io/kubernetes, its staging
# modules pinned in go.mod) and etcd (go.etcd.io/etcd/server/v3), from this
# module so that the main go.mod stays clean. Each is built only when it is
# missing or was built from another version (the version is recorded in
# .bin/<name>.version), so runs after the first cost nothing. The first
# build takes several minutes on two cores (kube-apiserver the most).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(cd "$here/../.." && pwd)/.bin"
mkdir -p "$bin"
cd "$here"

# version MODULE: the module's version in this module's build list.
version() { go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1"; }

build() { # NAME PACKAGE MODULE
  local name=$1 pkg=$2 mod=$3 want
  want="$mod@$(version "$mod")"
  if [ -x "$bin/$name" ] && [ "$(cat "$bin/$name.version" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "building $name ($want) into $bin (cached afterwards)"
  local start=$SECONDS
  go build -trimpath -o "$bin/$name.tmp" "$pkg"
  mv "$bin/$name.tmp" "$bin/$name"
  echo "$want" > "$bin/$name.version"
  echo "built $name in $((SECONDS - start))s"
}

build etcd go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes
