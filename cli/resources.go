package cli

import (
	"fmt"
	"strings"

	"github.com/switchboard-dev/switchboard/cluster"
)

// request is one kind and the names asked for (none: list them).
type request struct {
	kind  *cluster.Kind
	names []string
}

// allKinds is what `get all` shows, in kubectl's order (its "all"
// category, restricted to the kinds a node holds).
var allKinds = []*cluster.Kind{cluster.KindPod, cluster.KindService, cluster.KindDeployment, cluster.KindReplicaSet}

// lookupKinds resolves "pods,svc" or "all".
func lookupKinds(s string) ([]*cluster.Kind, error) {
	var out []*cluster.Kind
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.EqualFold(part, "all") {
			out = append(out, allKinds...)
			continue
		}
		k, err := cluster.LookupResource(part)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("resource type %q not recognised", s)
	}
	return out, nil
}

// parseResourceArgs reads kubectl's two argument forms: "TYPE[,TYPE...]
// [NAME...]" and "TYPE/NAME [TYPE/NAME...]". It also returns whether a
// single object was named (kubectl's "single item implied").
func parseResourceArgs(args []string) ([]request, bool, error) {
	if len(args) == 0 {
		return nil, false, fmt.Errorf("you must specify the type of resource, one of: %s", kindNames())
	}
	if strings.Contains(args[0], "/") {
		var reqs []request
		index := map[*cluster.Kind]int{}
		for _, a := range args {
			typ, name, ok := strings.Cut(a, "/")
			if !ok || typ == "" || name == "" {
				return nil, false, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'switchboard get resource/<resource_name>' instead of 'switchboard get resource resource/<resource_name>'")
			}
			kinds, err := lookupKinds(typ)
			if err != nil {
				return nil, false, err
			}
			if len(kinds) != 1 {
				return nil, false, fmt.Errorf("%q names more than one resource type", typ)
			}
			k := kinds[0]
			i, ok := index[k]
			if !ok {
				i = len(reqs)
				index[k] = i
				reqs = append(reqs, request{kind: k})
			}
			reqs[i].names = append(reqs[i].names, name)
		}
		return reqs, len(args) == 1, nil
	}
	kinds, err := lookupKinds(args[0])
	if err != nil {
		return nil, false, err
	}
	names := args[1:]
	for _, n := range names {
		if strings.Contains(n, "/") {
			return nil, false, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'switchboard get resource/<resource_name>' instead of 'switchboard get resource resource/<resource_name>'")
		}
	}
	// "get pods,svc web": as kubectl, each kind gets the names.
	reqs := make([]request, 0, len(kinds))
	seen := map[*cluster.Kind]bool{}
	for _, k := range kinds {
		if seen[k] {
			continue
		}
		seen[k] = true
		reqs = append(reqs, request{kind: k, names: names})
	}
	return reqs, len(reqs) == 1 && len(names) == 1, nil
}

func kindNames() string {
	names := make([]string, 0, len(cluster.Kinds))
	for _, k := range cluster.Kinds {
		names = append(names, k.Resource)
	}
	return strings.Join(names, ", ")
}

// noResourcesMessage is what kubectl prints when a list is empty.
func noResourcesMessage(ns string, allNamespaces bool, kinds []*cluster.Kind) string {
	namespaced := false
	for _, k := range kinds {
		if k.Namespaced {
			namespaced = true
		}
	}
	if allNamespaces || !namespaced {
		return "No resources found"
	}
	return fmt.Sprintf("No resources found in %s namespace.", ns)
}
