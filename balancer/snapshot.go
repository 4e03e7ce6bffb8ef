package balancer

import (
	"math/bits"
	"sync"
)

// maxWeight bounds Spec.Weight so that load × effective weight products stay far from overflow.
const maxWeight = 1 << 20

// Slow-start ramp, fixed point: an effective weight is Weight × factor with factor in
// [rampMin, rampFull].
const (
	rampFull = 1024
	rampMin  = rampFull / 10
)

// Backend is one member of a snapshot. Immutable except through *Stats.
type Backend struct {
	Spec
	Tag string // sid tag ("" when tagging is off or the tag collides with another backend's)
	*Stats
	Index int // position in Snapshot.Backends

	seed uint64 // HashKey(ID): this backend's rendezvous-hash seed
}

// Snapshot is an immutable set of backends, swapped whole behind an atomic pointer.
// Backends are sorted by ID.
type Snapshot struct {
	Backends []*Backend

	byID  map[string]*Backend
	byTag map[string]*Backend
	env   *env

	cands  []*Backend // Active with Weight > 0, in Backends order
	cum    []uint64   // cumulative static weights of cands
	totalW uint64

	rrOnce sync.Once
	rrSeq  []int32 // smooth weighted round-robin sequence of indexes into cands (lazy)

	// zone is the view of the candidates in the preferred zone (WithZonePreference): the same
	// backends, with cands, cum and totalW over that zone only. nil when the preference is off,
	// or when the zone has no candidate or all of them.
	zone   *Snapshot
	isZone bool // this is such a view
}

// ByID returns the backend with this ID, or nil.
func (s *Snapshot) ByID(id string) *Backend { return s.byID[id] }

// ByTag returns the backend with this sid tag, or nil. It does not allocate.
func (s *Snapshot) ByTag(tag []byte) *Backend { return s.byTag[string(tag)] }

// Candidates returns the backends that may take new sessions by configuration (Active, Weight > 0),
// before ejection, exclusion and admission. The slice must not be modified.
func (s *Snapshot) Candidates() []*Backend { return s.cands }

// Eligible reports whether be may take the new session described by pick: Active, Weight > 0, not
// ejected at pick.Now and not in pick.Exclude. It ignores admission (see [Snapshot.HasRoom]).
func (s *Snapshot) Eligible(be *Backend, pick *Pick) bool {
	if be.State != Active || be.Weight <= 0 || be.Ejected(pick.Now) {
		return false
	}
	for _, x := range pick.Exclude {
		if x != nil && x.Stats == be.Stats {
			return false
		}
	}
	return true
}

// HasRoom reports whether be is under its admission limits at now: a handshake token available
// and fewer live sessions than the cap. It takes no token.
func (s *Snapshot) HasRoom(be *Backend, now int64) bool {
	e := s.env
	if e.maxSessions > 0 && be.Sessions.Load() >= e.maxSessions {
		return false
	}
	return e.interval == 0 || be.hasToken(now, e.interval, e.burst)
}

// Available is Eligible && HasRoom: what a policy may return.
func (s *Snapshot) Available(be *Backend, pick *Pick) bool {
	return s.Eligible(be, pick) && s.HasRoom(be, pick.Now)
}

// EffectiveWeight is be's weight at now scaled by slow start, in units of 1/1024 of Spec.Weight:
// Weight×1024 when not ramping, down to Weight×102 (10%) at the start of a ramp.
func (s *Snapshot) EffectiveWeight(be *Backend, now int64) int64 {
	return int64(be.Weight) * s.rampFactor(be, now)
}

// rampFactor is the slow-start factor of be at now, in [rampMin, rampFull]. The ramp starts when
// the backend joined or came back (rampStart) or when its last ejection ended, whichever is later.
func (s *Snapshot) rampFactor(be *Backend, now int64) int64 {
	win := s.env.slowStart
	if win <= 0 {
		return rampFull
	}
	start := max(be.rampStart.Load(), be.ejectedUntil.Load())
	if start == 0 {
		return rampFull
	}
	el := now - start
	if el >= win {
		return rampFull
	}
	return max(max(el, 0)*rampFull/win, rampMin)
}

// Rand returns a random number from the Balancer's injected source.
func (s *Snapshot) Rand() uint64 { return s.env.rand() }

// sampleWeighted maps a random r to a candidate with probability proportional to its static weight.
func (s *Snapshot) sampleWeighted(r uint64) *Backend {
	x, _ := bits.Mul64(r, s.totalW) // uniform in [0, totalW)
	lo, hi := 0, len(s.cum)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.cum[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return s.cands[lo]
}

// lighter reports whether a is less loaded than b relative to their effective weights:
// (load_a+1)/w_a < (load_b+1)/w_b.
func (s *Snapshot) lighter(a, b *Backend, now int64) bool {
	la, lb := a.Load()+1, b.Load()+1
	return la*s.EffectiveWeight(b, now) < lb*s.EffectiveWeight(a, now)
}

// leastLoaded returns the available candidate with the smallest (load+1)/effective weight, scanning
// from a random offset so that ties spread.
func (s *Snapshot) leastLoaded(pick *Pick) *Backend {
	n := len(s.cands)
	if n == 0 {
		return nil
	}
	var best *Backend
	var bestL, bestW int64
	start, _ := bits.Mul64(s.env.rand(), uint64(n))
	for i := range n {
		j := int(start) + i
		if j >= n {
			j -= n
		}
		be := s.cands[j]
		if !s.Available(be, pick) {
			continue
		}
		l, w := be.Load()+1, s.EffectiveWeight(be, pick.Now)
		if best == nil || l*bestW < bestL*w {
			best, bestL, bestW = be, l, w
		}
	}
	return best
}

// reason classifies a failed placement.
func (s *Snapshot) reason(pick *Pick) Reason {
	for _, be := range s.cands {
		if s.Eligible(be, pick) {
			return AllFull
		}
	}
	return NoBackends
}
