package serviceproxy

import (
	corev1 "k8s.io/api/core/v1"
)

// categorize is kube-proxy's pkg/proxy/topology.go CategorizeEndpoints
// (with the PreferSameTrafficDistribution feature on), on this package's
// types:
//
//   - "Usable endpoints" means Ready endpoints by default, but falls back
//     to Serving-Terminating endpoints (independently for Cluster and
//     Local) if no Ready endpoints are available.
//   - Cluster endpoints are narrowed by topology: PreferSameNode when every
//     ready endpoint has a node hint and one is hinted for this node, else
//     PreferSameZone when every ready endpoint has a zone hint and one is
//     hinted for this node's zone, else no topology.
//   - hasAnyEndpoints is true when a usable endpoint exists anywhere.
//
// One addition: upstream reads hints only, which the EndpointSlice
// controller writes from spec.trafficDistribution. When no endpoint of the
// service carries any hint and the service asks for PreferClose,
// PreferSameZone or PreferSameNode, the hints are derived here exactly as
// that controller derives them (trafficdist's preferCloseHeuristic: each
// ready endpoint is hinted for its own zone, and for PreferSameNode also
// for its own node), so that the standalone node, whose controller writes
// no hints, routes the same way.
func categorize(endpoints []*Endpoint, svc *ServicePort, nodeName, zone string) (clusterEndpoints, localEndpoints, allReachable []*Endpoint, hasAny bool) {
	hints := effectiveHints(endpoints, svc)

	var topologyMode string
	var useServingTerminating bool

	if svc.UsesClusterEndpoints() {
		topologyMode = topologyModeFromHints(endpoints, hints, nodeName, zone)
		clusterEndpoints = filterEndpoints(endpoints, func(i int, ep *Endpoint) bool {
			return ep.Ready && availableForTopology(hints[i], topologyMode, nodeName, zone)
		})
		// If we didn't get any endpoints, try again using terminating
		// endpoints. (We would already have chosen to ignore topology if
		// there were no ready endpoints for the given topology, so the
		// problem at this point must be that there are no ready endpoints
		// anywhere.)
		if len(clusterEndpoints) == 0 {
			clusterEndpoints = filterEndpoints(endpoints, func(_ int, ep *Endpoint) bool {
				return ep.Serving && ep.Terminating
			})
		}
		// If there are any Ready endpoints anywhere in the cluster, we are
		// guaranteed to get one in clusterEndpoints.
		if len(clusterEndpoints) > 0 {
			hasAny = true
		}
	}

	if !svc.UsesLocalEndpoints() {
		allReachable = clusterEndpoints
		return
	}

	// Pre-scan the endpoints, to figure out which type of endpoint Local
	// traffic policy will use, and also to see if there are any usable
	// endpoints anywhere in the cluster.
	var hasLocalReady, hasLocalServingTerminating bool
	for _, ep := range endpoints {
		if ep.Ready {
			hasAny = true
			if ep.IsLocal {
				hasLocalReady = true
			}
		} else if ep.Serving && ep.Terminating {
			hasAny = true
			if ep.IsLocal {
				hasLocalServingTerminating = true
			}
		}
	}

	if hasLocalReady {
		localEndpoints = filterEndpoints(endpoints, func(_ int, ep *Endpoint) bool {
			return ep.IsLocal && ep.Ready
		})
	} else if hasLocalServingTerminating {
		useServingTerminating = true
		localEndpoints = filterEndpoints(endpoints, func(_ int, ep *Endpoint) bool {
			return ep.IsLocal && ep.Serving && ep.Terminating
		})
	}

	if !svc.UsesClusterEndpoints() {
		allReachable = localEndpoints
		return
	}

	if topologyMode == "" && !useServingTerminating {
		// localEndpoints holds only Ready endpoints and clusterEndpoints
		// every Ready endpoint: the cluster list is a superset.
		allReachable = clusterEndpoints
		return
	}

	// clusterEndpoints may contain remote endpoints that aren't in
	// localEndpoints, while localEndpoints may contain terminating or
	// topologically-unavailable local endpoints that aren't in
	// clusterEndpoints: merge them (in the order of endpoints).
	in := make(map[*Endpoint]bool, len(clusterEndpoints)+len(localEndpoints))
	for _, ep := range clusterEndpoints {
		in[ep] = true
	}
	for _, ep := range localEndpoints {
		in[ep] = true
	}
	allReachable = make([]*Endpoint, 0, len(in))
	seen := make(map[string]bool, len(in))
	for _, ep := range endpoints {
		if in[ep] && !seen[ep.String()] {
			seen[ep.String()] = true
			allReachable = append(allReachable, ep)
		}
	}
	return
}

// endpointHints are the hints an endpoint is taken to carry.
type endpointHints struct {
	zones, nodes []string
}

// effectiveHints returns each endpoint's hints: its own, or (when no
// endpoint carries any and the service asks for a close distribution) the
// ones the EndpointSlice controller would write.
func effectiveHints(endpoints []*Endpoint, svc *ServicePort) []endpointHints {
	out := make([]endpointHints, len(endpoints))
	anyHint := false
	for i, ep := range endpoints {
		out[i] = endpointHints{zones: ep.ZoneHints, nodes: ep.NodeHints}
		if len(ep.ZoneHints) > 0 || len(ep.NodeHints) > 0 {
			anyHint = true
		}
	}
	if anyHint {
		return out
	}
	switch svc.TrafficDistribution {
	case corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameZone, corev1.ServiceTrafficDistributionPreferSameNode:
	default:
		return out
	}
	sameNode := svc.TrafficDistribution == corev1.ServiceTrafficDistributionPreferSameNode
	for i, ep := range endpoints {
		// "update adds a same zone topology hint for all ready endpoints"
		if !ep.Ready {
			continue
		}
		if ep.Zone != "" {
			out[i].zones = []string{ep.Zone}
		}
		if sameNode && ep.NodeName != "" {
			out[i].nodes = []string{ep.NodeName}
		}
	}
	return out
}

// topologyModeFromHints returns "", PreferSameZone or PreferSameNode:
//   - if every ready endpoint has a node hint, and at least one endpoint is
//     hinted for this node, PreferSameNode;
//   - otherwise, if every ready endpoint has a zone hint, and at least one
//     endpoint is hinted for this node's zone, PreferSameZone;
//   - otherwise "" (no topology, default traffic distribution).
func topologyModeFromHints(endpoints []*Endpoint, hints []endpointHints, nodeName, zone string) string {
	hasReady := false
	hasForNode, allNodeHints := false, true
	hasForZone, allZoneHints := false, true
	for i, ep := range endpoints {
		if !ep.Ready {
			continue
		}
		hasReady = true
		if len(hints[i].nodes) == 0 {
			allNodeHints = false
		} else if has(hints[i].nodes, nodeName) {
			hasForNode = true
		}
		if len(hints[i].zones) == 0 {
			allZoneHints = false
		} else if has(hints[i].zones, zone) {
			hasForZone = true
		}
	}
	// If no ready endpoints exist, there are no hints to consider.
	if !hasReady {
		return ""
	}
	if allNodeHints && hasForNode {
		return corev1.ServiceTrafficDistributionPreferSameNode
	}
	if allZoneHints && hasForZone {
		return corev1.ServiceTrafficDistributionPreferSameZone
	}
	return ""
}

// availableForTopology tells whether an endpoint may be used from this
// node under topologyMode. (There is no fallback here; the fallback
// happens when choosing the mode.)
func availableForTopology(h endpointHints, topologyMode, nodeName, zone string) bool {
	switch topologyMode {
	case "":
		return true
	case corev1.ServiceTrafficDistributionPreferSameNode:
		return has(h.nodes, nodeName)
	case corev1.ServiceTrafficDistributionPreferSameZone:
		return has(h.zones, zone)
	default:
		return false
	}
}

func filterEndpoints(endpoints []*Endpoint, keep func(int, *Endpoint) bool) []*Endpoint {
	out := make([]*Endpoint, 0, len(endpoints))
	for i, ep := range endpoints {
		if keep(i, ep) {
			out = append(out, ep)
		}
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
