package health

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"sioproxy/balancer"
)

// ErrUnknownBackend is returned for a backend id no source lists.
var ErrUnknownBackend = errors.New("unknown backend")

// Publisher takes whole backend sets; (*balancer.Balancer).Update satisfies it.
type Publisher interface {
	Update(specs []balancer.Spec)
}

var _ Publisher = (*balancer.Balancer)(nil)

// Sources merges the backend specs of every source (static config, each discovered service),
// applies operator drains and active-probe verdicts, and publishes the result. An id listed by two
// sources is taken from the source whose name sorts first. Sources change rarely; the mutex is off
// the request path. It is the StatusSetter of a Prober.
type Sources struct {
	mu      sync.Mutex
	clock   Clock
	sources map[string][]balancer.Spec
	drained map[string]bool // drained from the admin API
	down    map[string]bool // active probes say down
	gone    map[string]removedSpec
	publish func([]balancer.Spec)
}

// removedSpec is a backend a source dropped: it keeps its sessions (draining) until the grace ends.
type removedSpec struct {
	spec  balancer.Spec
	until time.Time
}

// NewSources returns an empty set that publishes to p; clock times the graces (nil: SystemClock).
func NewSources(p Publisher, clock Clock) *Sources {
	if clock == nil {
		clock = SystemClock{}
	}
	return &Sources{clock: clock, sources: map[string][]balancer.Spec{}, drained: map[string]bool{},
		down: map[string]bool{}, gone: map[string]removedSpec{}, publish: p.Update}
}

// Set replaces the specs of one source and publishes. A backend the source no longer lists drains
// for grace, so that a reload drops no session at once; grace 0 drops it at once (a provider that
// keeps its own grace, such as Consul's deregister_grace, passes 0). A nil specs removes the source.
func (s *Sources) Set(source string, specs []balancer.Spec, grace time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for _, old := range s.sources[source] {
		if !slices.ContainsFunc(specs, func(n balancer.Spec) bool { return n.ID == old.ID }) && grace > 0 {
			old.State = balancer.Draining
			s.gone[old.ID] = removedSpec{spec: old, until: now.Add(grace)}
			go func() {
				<-s.clock.After(grace)
				s.expire()
			}()
		}
	}
	for _, n := range specs {
		delete(s.gone, n.ID)
	}
	if specs == nil {
		delete(s.sources, source)
	} else {
		s.sources[source] = specs
	}
	s.publishLocked()
}

// expire drops removed backends whose grace has ended.
func (s *Sources) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	changed := false
	for id, g := range s.gone {
		if !now.Before(g.until) {
			delete(s.gone, id)
			changed = true
		}
	}
	if changed {
		s.publishLocked()
	}
}

// Drain turns the operator drain of a backend on or off.
func (s *Sources) Drain(id string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.knownLocked(id) {
		return fmt.Errorf("%w: %s", ErrUnknownBackend, id)
	}
	if on {
		s.drained[id] = true
	} else {
		delete(s.drained, id)
	}
	s.publishLocked()
	return nil
}

// SetStatus records an active probe's verdict (StatusSetter): a backend that is down drains.
func (s *Sources) SetStatus(id string, up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down[id] == !up {
		return
	}
	if up {
		delete(s.down, id)
	} else {
		s.down[id] = true
	}
	s.publishLocked()
}

// Specs returns the merged specs as last published.
func (s *Sources) Specs() []balancer.Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mergedLocked()
}

func (s *Sources) knownLocked(id string) bool {
	for _, specs := range s.sources {
		for _, sp := range specs {
			if sp.ID == id {
				return true
			}
		}
	}
	return false
}

func (s *Sources) mergedLocked() []balancer.Spec {
	names := make([]string, 0, len(s.sources))
	for n := range s.sources {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []balancer.Spec
	seen := map[string]bool{}
	for _, n := range names {
		for _, sp := range s.sources[n] {
			if seen[sp.ID] {
				continue // the first source (by name) wins a duplicate id
			}
			seen[sp.ID] = true
			if s.drained[sp.ID] || s.down[sp.ID] {
				sp.State = balancer.Draining
			}
			out = append(out, sp)
		}
	}
	for id, g := range s.gone {
		if !seen[id] {
			out = append(out, g.spec)
		}
	}
	return out
}

// publishLocked publishes the merged specs. An operator drain or a probe verdict ends with its
// backend: once no source lists the id and its grace is over, the flag goes, so a backend that
// comes back under the same id comes back as its source says (not drained by a forgotten call).
func (s *Sources) publishLocked() {
	for _, flags := range []map[string]bool{s.drained, s.down} {
		for id := range flags {
			if _, removed := s.gone[id]; !removed && !s.knownLocked(id) {
				delete(flags, id)
			}
		}
	}
	s.publish(s.mergedLocked())
}
