package health

import (
	"testing"
	"time"

	"sioproxy/balancer"
)

type publishFunc func([]balancer.Spec)

func (f publishFunc) Update(specs []balancer.Spec) { f(specs) }

func TestSourcesMergeAndDrain(t *testing.T) {
	var published [][]balancer.Spec
	s := NewSources(publishFunc(func(specs []balancer.Spec) { published = append(published, specs) }))
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "b", State: balancer.Active}})
	s.Set("consul:chat", []balancer.Spec{{ID: "c", State: balancer.Active}, {ID: "a", State: balancer.Draining}})
	last := published[len(published)-1]
	if len(last) != 3 || last[0].ID != "c" || last[1].ID != "a" || last[1].State != balancer.Draining {
		t.Fatalf("merged: %+v (sources merge in name order, first wins a duplicate id)", last)
	}
	if err := s.Drain("b", true); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(published[len(published)-1], "b"); st != balancer.Draining {
		t.Fatalf("b after drain: %v", st)
	}
	s.Set("static", []balancer.Spec{{ID: "a"}, {ID: "b", State: balancer.Active}})
	if st := stateOf(published[len(published)-1], "b"); st != balancer.Draining {
		t.Fatalf("drain must survive a source update, b is %v", st)
	}
	s.Drain("b", false)
	if st := stateOf(published[len(published)-1], "b"); st != balancer.Active {
		t.Fatalf("b after undrain: %v", st)
	}
	if err := s.Drain("zzz", true); err == nil {
		t.Fatal("drain of an unknown backend succeeded")
	}
	n := len(published)
	s.SetStatus("b", false)
	s.SetStatus("b", false)
	if len(published) != n+1 || stateOf(published[len(published)-1], "b") != balancer.Draining {
		t.Fatalf("probe down: %d publishes, b %v", len(published)-n, stateOf(published[len(published)-1], "b"))
	}
}

func stateOf(specs []balancer.Spec, id string) balancer.State {
	for _, s := range specs {
		if s.ID == id {
			return s.State
		}
	}
	return 255
}

func TestRemovedBackendDrainsForGrace(t *testing.T) {
	var last []balancer.Spec
	s := NewSources(publishFunc(func(specs []balancer.Spec) { last = specs }))
	s.grace = 100 * time.Millisecond
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "b", State: balancer.Active}})
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}})
	if st := stateOf(last, "b"); st != balancer.Draining {
		t.Fatalf("removed backend: %v, want draining during the grace", st)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		s.mu.Lock()
		n := len(last)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("removed backend still listed after the grace: %+v", last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Re-adding within the grace cancels the removal.
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "c", State: balancer.Active}})
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}})
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "c", State: balancer.Active}})
	if st := stateOf(s.Specs(), "c"); st != balancer.Active {
		t.Fatalf("re-added backend: %v", st)
	}
}
