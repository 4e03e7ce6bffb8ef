package balancer

import (
	"cmp"
	"slices"
)

// normalize returns a sorted copy of specs: ordered by ID, first occurrence of a duplicate ID kept,
// weights clamped to [0, maxWeight], unknown states treated as Draining.
func normalize(specs []Spec) []Spec {
	out := slices.Clone(specs)
	slices.SortStableFunc(out, func(a, b Spec) int { return cmp.Compare(a.ID, b.ID) })
	out = slices.CompactFunc(out, func(a, b Spec) bool { return a.ID == b.ID })
	for i := range out {
		out[i].Weight = min(max(out[i].Weight, 0), maxWeight)
		if out[i].State > Draining {
			out[i].State = Draining
		}
	}
	return out
}

// candidate reports whether a spec may take new sessions by configuration.
func candidate(sp Spec) bool { return sp.State == Active && sp.Weight > 0 }

// buildSnapshot builds the snapshot of specs (normalized). Stats are reused by ID from old; a
// backend that becomes a candidate while prev had candidates starts a slow-start ramp at now. It
// returns the new snapshot and the new Stats map: the snapshot's backends plus departed backends
// that are still busy.
func buildSnapshot(e *env, specs []Spec, prev *Snapshot, old map[string]*Stats, now int64) (*Snapshot, map[string]*Stats) {
	s := &Snapshot{
		Backends: make([]*Backend, len(specs)),
		byID:     make(map[string]*Backend, len(specs)),
		byTag:    make(map[string]*Backend, len(specs)),
		env:      e,
	}
	stats := make(map[string]*Stats, len(specs))
	ramp := e.slowStart > 0 && len(prev.cands) > 0
	tagCount := make(map[string]int, len(specs))
	for i, sp := range specs {
		st := old[sp.ID]
		if st == nil {
			st = new(Stats)
		}
		stats[sp.ID] = st
		if ramp && candidate(sp) {
			if p := prev.byID[sp.ID]; p == nil || !candidate(p.Spec) {
				st.rampStart.Store(now)
			}
		}
		be := &Backend{Spec: sp, Stats: st, Index: i, seed: HashKey([]byte(sp.ID))}
		if e.tagger != nil {
			be.Tag = e.tagger(sp.ID)
			if be.Tag != "" {
				tagCount[be.Tag]++
			}
		}
		s.Backends[i] = be
		s.byID[sp.ID] = be
		if candidate(sp) {
			s.totalW += uint64(sp.Weight)
			s.cands = append(s.cands, be)
			s.cum = append(s.cum, s.totalW)
		}
	}
	s.zone = zoneView(s)
	for _, be := range s.Backends {
		if be.Tag == "" {
			continue
		}
		if tagCount[be.Tag] > 1 {
			be.Tag = "" // collision: these backends fall back to the session table
			continue
		}
		s.byTag[be.Tag] = be
	}
	for id, st := range old {
		if _, ok := stats[id]; !ok && st.busy() {
			stats[id] = st
		}
	}
	return s, stats
}

// zoneView returns the view of s restricted to the candidates in the preferred zone, or nil (see
// Snapshot.zone).
func zoneView(s *Snapshot) *Snapshot {
	z := s.env.zone
	if z == "" {
		return nil
	}
	v := &Snapshot{Backends: s.Backends, byID: s.byID, byTag: s.byTag, env: s.env, isZone: true}
	for _, be := range s.cands {
		if be.Zone == z {
			v.totalW += uint64(be.Weight)
			v.cands = append(v.cands, be)
			v.cum = append(v.cum, v.totalW)
		}
	}
	if len(v.cands) == 0 || len(v.cands) == len(s.cands) {
		return nil
	}
	return v
}

// maxSeq bounds the length of a round-robin sequence (weights are scaled down beyond it).
const maxSeq = 1 << 14

// rrSequence returns the smooth weighted round-robin sequence of the snapshot (indexes into
// cands), computed once on first use. It is nginx's SWRR unrolled over one period: weights 5,1,1
// give a a b a c a a.
func (s *Snapshot) rrSequence() []int32 {
	s.rrOnce.Do(func() { s.rrSeq = smoothSequence(s.cands) })
	return s.rrSeq
}

func smoothSequence(cands []*Backend) []int32 {
	if len(cands) == 0 {
		return nil
	}
	w := make([]int64, len(cands))
	var g, total int64
	for i, be := range cands {
		w[i] = int64(be.Weight)
		g = gcd(g, w[i])
	}
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	if total > maxSeq {
		// Keep proportions approximately; every candidate keeps at least one slot.
		t := total
		total = 0
		for i := range w {
			w[i] = max(w[i]*maxSeq/t, 1)
			total += w[i]
		}
	}
	seq := make([]int32, 0, total)
	cur := make([]int64, len(w))
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, int32(best))
	}
	return seq
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
