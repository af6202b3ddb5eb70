package ipvs

import (
	"errors"
	"fmt"
	"sort"

	libipvs "github.com/moby/ipvs"
)

// gracefulKey names one real server of one virtual server on its way
// out (upstream's GetUniqueRSName).
type gracefulKey struct {
	vs vsKey
	rs rsKey
}

// gracefulList is upstream's GracefulTerminationManager rsList: real
// servers that are no longer wanted but still carry connections. They
// stay with weight 0 (no new connections) until their connections end.
// Upstream checks the list every minute from a goroutine of its own;
// here every Sync checks it first (the core syncs at least every
// syncPeriod), in the namespace Sync runs in.
type gracefulList map[gracefulKey]bool

// gracefulDelete is upstream's GracefulDeleteRS: the real server is
// deleted at once when it needs no graceful termination (UDP, SCTP) or
// has no connection; else its weight becomes 0 and it joins the list.
func (g gracefulList) gracefulDelete(k kernel, vs vsKey, d *libipvs.Destination) error {
	rs := rsKeyOf(d)
	if !needsGracefulTermination(vs.Proto) || d.ActiveConnections+d.InactiveConnections == 0 {
		delete(g, gracefulKey{vs, rs})
		if err := k.DelDestination(keyService(vs), toDestination(rs, d.Weight)); err != nil {
			return fmt.Errorf("deleting real server %s of %s: %w", rs, vs, err)
		}
		return nil
	}
	if d.Weight != 0 {
		if err := k.UpdateDestination(keyService(vs), toDestination(rs, 0)); err != nil {
			return fmt.Errorf("setting the weight of real server %s of %s to 0: %w", rs, vs, err)
		}
	}
	g[gracefulKey{vs, rs}] = true
	return nil
}

// forgetVS drops the list's entries of a deleted virtual server.
func (g gracefulList) forgetVS(vs vsKey) {
	for k := range g {
		if k.vs == vs {
			delete(g, k)
		}
	}
}

// process is upstream's tryDeleteRs over the whole list: "For UDP and
// SCTP traffic, no graceful termination, we immediately delete the RS
// ... For other protocols, don't delete until all connections have
// expired". Entries whose real server or virtual server is gone are
// dropped.
func (g gracefulList) process(k kernel) error {
	if len(g) == 0 {
		return nil
	}
	byVS := map[vsKey][]rsKey{}
	for key := range g {
		byVS[key.vs] = append(byVS[key.vs], key.rs)
	}
	vss := make([]vsKey, 0, len(byVS))
	for v := range byVS {
		vss = append(vss, v)
	}
	sort.Slice(vss, func(i, j int) bool { return vss[i].less(vss[j]) })
	var errs []error
	for _, vs := range vss {
		dests, err := k.GetDestinations(keyService(vs))
		if err != nil {
			// The virtual server is gone.
			g.forgetVS(vs)
			continue
		}
		cur := make(map[rsKey]*libipvs.Destination, len(dests))
		for _, d := range dests {
			cur[rsKeyOf(d)] = d
		}
		for _, rs := range byVS[vs] {
			d := cur[rs]
			if d == nil {
				delete(g, gracefulKey{vs, rs})
				continue
			}
			if needsGracefulTermination(vs.Proto) && d.ActiveConnections+d.InactiveConnections != 0 {
				continue
			}
			if err := k.DelDestination(keyService(vs), d); err != nil {
				errs = append(errs, fmt.Errorf("deleting real server %s of %s: %w", rs, vs, err))
				continue
			}
			delete(g, gracefulKey{vs, rs})
		}
	}
	return errors.Join(errs...)
}
