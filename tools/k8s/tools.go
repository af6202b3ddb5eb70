//go:build tools

// Package tools records the commands build.sh builds, so that `go mod`
// keeps their dependencies in this module's go.sum.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
