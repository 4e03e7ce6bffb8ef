package main

import (
	"fmt"
	"slices"
	"sync"

	"sioproxy/admin"
	"sioproxy/balancer"
)

// backendSet merges the backend specs of every source (static config, each Consul service), applies
// operator drains and active-probe verdicts, and publishes the result to the balancer. Sources
// change rarely; a mutex here is off the request path.
type backendSet struct {
	mu      sync.Mutex
	sources map[string][]balancer.Spec
	drained map[string]bool // drained from the admin API
	down    map[string]bool // active probes say down
	publish func([]balancer.Spec)
}

func newBackendSet(publish func([]balancer.Spec)) *backendSet {
	return &backendSet{sources: map[string][]balancer.Spec{}, drained: map[string]bool{}, down: map[string]bool{}, publish: publish}
}

// Set replaces the specs of one source and publishes.
func (s *backendSet) Set(source string, specs []balancer.Spec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[source] = specs
	s.publishLocked()
}

// Drain turns the operator drain of a backend on or off.
func (s *backendSet) Drain(id string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.knownLocked(id) {
		return fmt.Errorf("%w: %s", admin.ErrUnknownBackend, id)
	}
	if on {
		s.drained[id] = true
	} else {
		delete(s.drained, id)
	}
	s.publishLocked()
	return nil
}

// SetStatus records an active probe's verdict (health.StatusSink).
func (s *backendSet) SetStatus(id string, up bool) {
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
func (s *backendSet) Specs() []balancer.Spec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mergedLocked()
}

func (s *backendSet) knownLocked(id string) bool {
	for _, specs := range s.sources {
		for _, sp := range specs {
			if sp.ID == id {
				return true
			}
		}
	}
	return false
}

func (s *backendSet) mergedLocked() []balancer.Spec {
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
	return out
}

func (s *backendSet) publishLocked() { s.publish(s.mergedLocked()) }
