// Package deploy holds the manifests a cluster admin applies to run
// Switchboard as a real cluster's DNS, kube-proxy, CNI plugin and ingress
// controller (`kubectl apply -f deploy/`): the switchboard-system
// namespace, one ServiceAccount and least-privilege RBAC per component,
// the Corefile ConfigMap, the DNS Deployment and kube-dns Service, the
// node DaemonSet (kube-proxy and the CNI conflist install) and the
// ingress Deployment with its IngressClass. The files are embedded so
// that the binary and tests can read them; the package holds no logic
// and must not touch any component's code.
package deploy

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed *.yaml
var files embed.FS

// Files is the manifests directory (the *.yaml files of deploy/).
func Files() fs.FS { return files }

// Names are the manifest files in the order they are applied (by name:
// the namespace first).
func Names() []string {
	ents, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}
