package balancer

import (
	"math/bits"
	"sync/atomic"
)

// RoundRobin is smooth weighted round robin (nginx's SWRR) without a lock: each snapshot unrolls
// one period of the SWRR sequence once, and an atomic counter walks it. Weights 5,1,1 give
// a a b a c a a. Unavailable backends are skipped; a slow-starting backend keeps its slot with
// probability equal to its ramp factor.
type RoundRobin struct {
	next     atomic.Uint64
	nextZone atomic.Uint64 // walks the zone views (WithZonePreference), so that they do not skew next
}

var _ Policy = (*RoundRobin)(nil)

// NewRoundRobin returns a smooth weighted round-robin policy.
func NewRoundRobin() Policy { return &RoundRobin{} }

// Place implements Policy.
func (r *RoundRobin) Place(s *Snapshot, pick *Pick) *Backend {
	seq := s.rrSequence()
	n := uint64(len(seq))
	if n == 0 {
		return nil
	}
	// Bound the walk: with a few candidates unavailable we find the next one quickly; beyond the
	// bound, fall back to a scan.
	tries := min(len(seq), 2*len(s.cands)+8)
	next := &r.next
	if s.isZone {
		next = &r.nextZone
	}
	for range tries {
		be := s.cands[seq[(next.Add(1)-1)%n]]
		if !s.Available(be, pick) {
			continue
		}
		if f := s.rampFactor(be, pick.Now); f < rampFull {
			if x, _ := bits.Mul64(s.env.rand(), rampFull); int64(x) >= f {
				continue
			}
		}
		return be
	}
	return s.leastLoaded(pick)
}
