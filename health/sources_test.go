package health

import (
	"sync"
	"testing"
	"time"

	"sioproxy/balancer"
)

type publishFunc func([]balancer.Spec)

func (f publishFunc) Update(specs []balancer.Spec) { f(specs) }

func TestSourcesMergeAndDrain(t *testing.T) {
	var published [][]balancer.Spec
	s := NewSources(publishFunc(func(specs []balancer.Spec) { published = append(published, specs) }), nil)
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "b", State: balancer.Active}}, 0)
	s.Set("consul:chat", []balancer.Spec{{ID: "c", State: balancer.Active}, {ID: "a", State: balancer.Draining}}, 0)
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
	s.Set("static", []balancer.Spec{{ID: "a"}, {ID: "b", State: balancer.Active}}, 0)
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
	var mu sync.Mutex
	var last []balancer.Spec
	clk := newFakeClock()
	s := NewSources(publishFunc(func(specs []balancer.Spec) { mu.Lock(); last = specs; mu.Unlock() }), clk)
	lastSpecs := func() []balancer.Spec { mu.Lock(); defer mu.Unlock(); return last }
	grace := 30 * time.Second
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "b", State: balancer.Active}}, grace)
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}}, grace)
	if st := stateOf(lastSpecs(), "b"); st != balancer.Draining {
		t.Fatalf("removed backend: %v, want draining during the grace", st)
	}
	clk.NextWait(t) // the grace timer is armed
	clk.Advance(grace - time.Second)
	if st := stateOf(lastSpecs(), "b"); st != balancer.Draining {
		t.Fatalf("removed backend before its grace ended: %v, want draining", st)
	}
	clk.Advance(time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for len(lastSpecs()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("removed backend still listed after the grace: %+v", lastSpecs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Re-adding within the grace cancels the removal.
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "c", State: balancer.Active}}, grace)
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}}, grace)
	s.Set("static", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "c", State: balancer.Active}}, grace)
	if st := stateOf(s.Specs(), "c"); st != balancer.Active {
		t.Fatalf("re-added backend: %v", st)
	}
}

// Grace 0 means none: a provider that keeps its own grace (Consul's deregister_grace) is not given a
// second one here.
func TestRemovedBackendWithoutGraceGoesAtOnce(t *testing.T) {
	var last []balancer.Spec
	s := NewSources(publishFunc(func(specs []balancer.Spec) { last = specs }), newFakeClock())
	s.Set("consul:chat", []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "b", State: balancer.Active}}, 0)
	s.Set("consul:chat", []balancer.Spec{{ID: "a", State: balancer.Active}}, 0)
	if len(last) != 1 || last[0].ID != "a" {
		t.Fatalf("with grace 0 the removed backend is still listed: %+v", last)
	}
	s.Set("consul:chat", nil, 0)
	if len(last) != 0 {
		t.Fatalf("a removed source's backends are still listed: %+v", last)
	}
}

// An operator drain and a probe verdict end with their backend: a backend that leaves every
// source and comes back under the same id comes back active (the chaos soak found one coming back
// drained, with no way to undrain it while it was away).
func TestDrainEndsWithItsBackend(t *testing.T) {
	var last []balancer.Spec
	clk := newFakeClock()
	s := NewSources(publishFunc(func(specs []balancer.Spec) { last = specs }), clk)
	both := []balancer.Spec{{ID: "a", State: balancer.Active}, {ID: "b", State: balancer.Active}}
	s.Set("consul:chat2", both, 0)
	if err := s.Drain("b", true); err != nil {
		t.Fatal(err)
	}
	s.SetStatus("a", false)
	s.Set("consul:chat2", nil, 0) // the service leaves discovery
	if len(last) != 0 {
		t.Fatalf("removed source still listed: %+v", last)
	}
	s.Set("consul:chat2", both, 0) // and comes back
	if st := stateOf(last, "b"); st != balancer.Active {
		t.Fatalf("b came back %v: the drain of its earlier life outlived it", st)
	}
	if st := stateOf(last, "a"); st != balancer.Active {
		t.Fatalf("a came back %v: the probe verdict of its earlier life outlived it", st)
	}
	// Within a removal's grace the drain stays: the backend is still there, draining its sessions.
	s.Drain("b", true)
	s.Set("consul:chat2", both[:1], time.Minute)
	s.Set("consul:chat2", both, time.Minute)
	if st := stateOf(last, "b"); st != balancer.Draining {
		t.Fatalf("b re-added within its grace is %v, want still drained", st)
	}
}
