package serviceproxy

// categorize is a first version without topology; the full kube-proxy
// logic replaces it.
func categorize(endpoints []*Endpoint, svc *ServicePort, nodeName, zone string) (clusterEndpoints, localEndpoints, allReachable []*Endpoint, hasAny bool) {
	usable := func(local bool) []*Endpoint {
		var ready, terminating []*Endpoint
		for _, e := range endpoints {
			if local && !e.IsLocal {
				continue
			}
			if e.Ready {
				ready = append(ready, e)
			} else if e.Serving && e.Terminating {
				terminating = append(terminating, e)
			}
		}
		if len(ready) > 0 {
			return ready
		}
		return terminating
	}
	hasAny = len(endpoints) > 0
	if svc.UsesClusterEndpoints() {
		clusterEndpoints = usable(false)
	}
	if svc.UsesLocalEndpoints() {
		localEndpoints = usable(true)
	}
	seen := map[*Endpoint]bool{}
	for _, l := range [][]*Endpoint{clusterEndpoints, localEndpoints} {
		for _, e := range l {
			if !seen[e] {
				seen[e] = true
				allReachable = append(allReachable, e)
			}
		}
	}
	return
}
