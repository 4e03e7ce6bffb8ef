package health

import (
	"cmp"
	"slices"
	"time"

	"sioproxy/balancer"
)

// tracker remembers instances that left Consul and keeps them as Draining for a grace
// period, so that their sticky sessions keep flowing while they shut down. Not safe for
// concurrent use: one watch goroutine owns it.
type tracker struct {
	grace time.Duration
	live  []balancer.Spec
	gone  map[string]goneSpec
}

// goneSpec is a deregistered instance and the time it is dropped.
type goneSpec struct {
	spec  balancer.Spec
	until time.Time
}

func newTracker(grace time.Duration) *tracker {
	return &tracker{grace: grace, gone: make(map[string]goneSpec)}
}

// apply records the current Consul answer (sorted by ID) seen at now.
func (t *tracker) apply(current []balancer.Spec, now time.Time) {
	in := make(map[string]struct{}, len(current))
	for _, s := range current {
		in[s.ID] = struct{}{}
		delete(t.gone, s.ID)
	}
	if t.grace > 0 {
		for _, s := range t.live {
			if _, ok := in[s.ID]; !ok {
				s.State = balancer.Draining
				t.gone[s.ID] = goneSpec{spec: s, until: now.Add(t.grace)}
			}
		}
	}
	t.live = current
}

// specs returns the live instances plus the deregistered ones still in grace at now,
// sorted by ID, and forgets the expired ones.
func (t *tracker) specs(now time.Time) []balancer.Spec {
	out := make([]balancer.Spec, 0, len(t.live)+len(t.gone))
	out = append(out, t.live...)
	for id, g := range t.gone {
		if !now.Before(g.until) {
			delete(t.gone, id)
			continue
		}
		out = append(out, g.spec)
	}
	slices.SortFunc(out, func(a, b balancer.Spec) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// next returns the earliest time a deregistered instance is dropped.
func (t *tracker) next() (time.Time, bool) {
	var first time.Time
	for _, g := range t.gone {
		if first.IsZero() || g.until.Before(first) {
			first = g.until
		}
	}
	return first, !first.IsZero()
}
