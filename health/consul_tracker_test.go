package health

import (
	"slices"
	"testing"
	"time"

	"sioproxy/balancer"
)

func TestTrackerGrace(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := spec("a", "10.0.0.1:80", 1, balancer.Active)
	b := spec("b", "10.0.0.2:80", 3, balancer.Active)
	bDrain := spec("b", "10.0.0.2:80", 3, balancer.Draining)
	type step struct {
		at       time.Duration // since t0
		apply    []balancer.Spec
		want     []balancer.Spec
		wantNext time.Duration // since t0; -1 = none
	}
	tests := []struct {
		name  string
		grace time.Duration
		steps []step
	}{
		{"kept then dropped", 10 * time.Second, []step{
			{0, []balancer.Spec{a, b}, []balancer.Spec{a, b}, -1},
			{time.Second, []balancer.Spec{a}, []balancer.Spec{a, bDrain}, 11 * time.Second},
			{11*time.Second - 1, nil, []balancer.Spec{a, bDrain}, 11 * time.Second},
			{11 * time.Second, nil, []balancer.Spec{a}, -1},
		}},
		{"comes back", 10 * time.Second, []step{
			{0, []balancer.Spec{a, b}, []balancer.Spec{a, b}, -1},
			{time.Second, []balancer.Spec{a}, []balancer.Spec{a, bDrain}, 11 * time.Second},
			{2 * time.Second, []balancer.Spec{a, b}, []balancer.Spec{a, b}, -1},
		}},
		{"all gone", 5 * time.Second, []step{
			{0, []balancer.Spec{a, b}, []balancer.Spec{a, b}, -1},
			{0, []balancer.Spec{}, []balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Draining), bDrain}, 5 * time.Second},
			{5 * time.Second, nil, []balancer.Spec{}, -1},
		}},
		{"no grace", -1, []step{
			{0, []balancer.Spec{a, b}, []balancer.Spec{a, b}, -1},
			{time.Second, []balancer.Spec{a}, []balancer.Spec{a}, -1},
		}},
		{"deregister_grace 0 means none", 0, []step{
			{0, []balancer.Spec{a, b}, []balancer.Spec{a, b}, -1},
			{time.Second, []balancer.Spec{a}, []balancer.Spec{a}, -1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(tc.grace)
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				if s.apply != nil {
					tr.apply(s.apply, now)
				}
				if got := tr.specs(now); !slices.Equal(got, s.want) {
					t.Fatalf("step %d: got %+v, want %+v", i, got, s.want)
				}
				next, ok := tr.next()
				if s.wantNext < 0 {
					if ok {
						t.Fatalf("step %d: next = %v, want none", i, next)
					}
				} else if !ok || !next.Equal(t0.Add(s.wantNext)) {
					t.Fatalf("step %d: next = %v %v, want %v", i, next, ok, t0.Add(s.wantNext))
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0, 250 * time.Millisecond},
		{1, 0.5, 375 * time.Millisecond},
		{2, 0, 500 * time.Millisecond},
		{3, 0.999999, 2*time.Second - time.Microsecond},
		{4, 0, 2 * time.Second},
		{5, 0, 4 * time.Second},
		{6, 0, 4 * time.Second}, // capped at 8 s
		{60, 0.5, 6 * time.Second},
	}
	for _, tc := range tests {
		got := backoff(tc.attempt, 500*time.Millisecond, 8*time.Second, tc.r)
		if got.Round(time.Microsecond) != tc.want {
			t.Errorf("backoff(%d, %v) = %v, want %v", tc.attempt, tc.r, got, tc.want)
		}
	}
}

func TestNextIndex(t *testing.T) {
	tests := []struct{ prev, got, want uint64 }{
		{0, 5, 5},
		{5, 5, 5},
		{5, 9, 9},
		{9, 3, 0}, // went backwards (Consul restarted, snapshot restore): fresh read
		{9, 0, 1}, // zero would make every query return at once
		{0, 0, 1},
	}
	for _, tc := range tests {
		if got := nextIndex(tc.prev, tc.got); got != tc.want {
			t.Errorf("nextIndex(%d, %d) = %d, want %d", tc.prev, tc.got, got, tc.want)
		}
	}
}
