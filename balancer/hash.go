package balancer

import "math"

// Hash is consistent hashing on Pick.Key with bounded loads: weighted rendezvous (highest random
// weight) hashing gives every key its own order of backends; the key goes to the first backend in
// that order that is available and below ceil((1+ε) × its weighted share of the live sessions,
// counting the one being placed). Adding or removing a backend moves only the keys that
// rendezvous on it (~1/N). Without a key (HasKey false) a random key is drawn. O(n) per placement.
type Hash struct {
	eps float64 // <= 0: unbounded
}

var _ Policy = (*Hash)(nil)

// NewHash returns the bounded-load consistent-hash policy with slack epsilon: no backend gets more
// than ceil((1+epsilon) × its weighted share of the live sessions; epsilon <= 0 means no bound.
func NewHash(epsilon float64) Policy {
	return &Hash{eps: epsilon}
}

// Epsilon returns the bounded-load slack (<= 0: unbounded).
func (h *Hash) Epsilon() float64 { return h.eps }

// Place implements Policy.
func (h *Hash) Place(s *Snapshot, pick *Pick) *Backend {
	key := pick.Key
	if !pick.HasKey {
		key = s.env.rand()
	}
	now := pick.Now
	// Pass 1: live sessions and weight of the eligible set (the bound's mean).
	var total, sumW, firstW int64
	equal := true
	for _, be := range s.cands {
		if !s.Eligible(be, pick) {
			continue
		}
		w := s.EffectiveWeight(be, now)
		if sumW == 0 {
			firstW = w
		} else if w != firstW {
			equal = false
		}
		total += be.Load()
		sumW += w
	}
	if sumW == 0 {
		return nil
	}
	// capPerW × w bounds the load a backend of effective weight w may have before this placement.
	capPerW := math.Inf(1)
	if h.eps > 0 {
		capPerW = (1 + h.eps) * float64(total+1) / float64(sumW)
	}
	// Pass 2: the highest-scoring backend that is available and under its bound, which is the first
	// such backend in the key's own order.
	var best *Backend
	var bestH uint64
	bestScore := math.Inf(-1)
	for _, be := range s.cands {
		x := mix64(key ^ be.seed)
		var sc float64
		if equal { // same weights: the raw hash orders like the score, no logarithm needed
			if best != nil && x <= bestH {
				continue
			}
		} else {
			u := (float64(x>>11) + 0.5) * (1.0 / (1 << 53))
			w := float64(s.EffectiveWeight(be, now))
			if w/(1-u) <= bestScore { // -ln(u) >= 1-u: cannot win, skip the logarithm
				continue
			}
			sc = w / -math.Log(u)
			if sc <= bestScore {
				continue
			}
		}
		if !s.Available(be, pick) || float64(be.Load()) >= capPerW*float64(s.EffectiveWeight(be, now)) {
			continue // unavailable, or full: load+1 > ceil(capPerW×w) ⟺ load >= capPerW×w
		}
		best, bestH, bestScore = be, x, sc
	}
	return best
}
