package forward

import (
	"math/rand/v2"
	"sync/atomic"
)

// Policy orders the upstreams tried for one query.
type Policy interface {
	List([]*Proxy) []*Proxy
	String() string
}

// random tries the upstreams in a random order (the default).
type random struct{}

func (r *random) String() string { return "random" }

func (r *random) List(p []*Proxy) []*Proxy {
	switch len(p) {
	case 1:
		return p
	case 2:
		if rand.IntN(2) == 0 {
			return []*Proxy{p[1], p[0]}
		}
		return p
	}
	rnd := make([]*Proxy, len(p))
	for i, j := range rand.Perm(len(p)) {
		rnd[i] = p[j]
	}
	return rnd
}

// roundRobin starts each query at the next upstream.
type roundRobin struct{ robin uint32 }

func (r *roundRobin) String() string { return "round_robin" }

func (r *roundRobin) List(p []*Proxy) []*Proxy {
	i := atomic.AddUint32(&r.robin, 1) % uint32(len(p))
	robin := make([]*Proxy, 0, len(p))
	robin = append(robin, p[i])
	robin = append(robin, p[:i]...)
	robin = append(robin, p[i+1:]...)
	return robin
}

// sequential always tries the upstreams in the order written.
type sequential struct{}

func (r *sequential) String() string { return "sequential" }

func (r *sequential) List(p []*Proxy) []*Proxy { return p }
