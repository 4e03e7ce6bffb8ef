package balancer

import (
	"strings"
	"testing"
	"time"
)

func TestRoundRobinSequences(t *testing.T) {
	tests := []struct {
		name string
		sp   []Spec
		n    int
		want string
	}{
		{"nginx 5,1,1", specs(5, 1, 1), 14, "aabacaa" + "aabacaa"},
		{"gcd reduced 10,2,2", specs(10, 2, 2), 7, "aabacaa"},
		{"equal", specs(1, 1, 1), 6, "abcabc"},
		{"2,1", specs(2, 1), 6, "abaaba"},
		{"weight 0 gets nothing", specs(1, 0, 1), 4, "acac"},
		{"draining gets nothing", func() []Spec { s := specs(1, 1, 1); s[1].State = Draining; return s }(), 4, "acac"},
		{"input order irrelevant", []Spec{specs(5, 1, 1)[2], specs(5, 1, 1)[0], specs(5, 1, 1)[1]}, 7, "aabacaa"},
		{"none", specs(0, 0), 2, "--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := newTest(t, NewRoundRobin(), tt.sp, WithSlowStart(0))
			if got := placeIDs(b, c, tt.n); got != tt.want {
				t.Fatalf("sequence %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRoundRobinSkipsEjectedAndExcluded(t *testing.T) {
	b, c := newTest(t, NewRoundRobin(), specs(1, 1, 1), WithSlowStart(0), WithEjection(10*time.Second, 1))
	s := b.Snapshot()
	b.ReportFailure(s.ByID("b"))
	if got := placeIDs(b, c, 4); got != "acac" {
		t.Fatalf("with b ejected: %q, want acac", got)
	}
	p := c.pick(s.ByID("a"))
	for range 3 {
		if be := b.Place(p); be == nil || be.ID != "c" {
			t.Fatalf("excluding a with b ejected: got %v, want c", be)
		}
	}
}

func TestRoundRobinLargeWeightsBounded(t *testing.T) {
	sp := specs(1_000_000, 999_999, 3)
	seq := smoothSequence(func() []*Backend {
		out := make([]*Backend, len(sp))
		for i := range sp {
			out[i] = &Backend{Spec: sp[i]}
		}
		return out
	}())
	if len(seq) > maxSeq+len(sp) {
		t.Fatalf("sequence length %d exceeds bound %d", len(seq), maxSeq+len(sp))
	}
	count := make([]int, 3)
	for _, i := range seq {
		count[i]++
	}
	if count[2] < 1 || count[0] < count[1] || count[1] < count[2] {
		t.Fatalf("proportions lost: %v", count)
	}
}

func TestRoundRobinSlowStartThins(t *testing.T) {
	// b joins later and ramps: at the start of its window it keeps ~10% of its slots.
	b, c := newTest(t, NewRoundRobin(), specs(1), WithSlowStart(30*time.Second))
	b.Update(specs(1, 1))
	got := placeIDs(b, c, 2000)
	nb := strings.Count(got, "b")
	if nb < 50 || nb > 170 { // expected ≈ 1000 × 0.1 = 100
		t.Fatalf("ramping b got %d of 2000, want about 100", nb)
	}
	c.Advance(30 * time.Second)
	if got := placeIDs(b, c, 4); strings.Count(got, "b") != 2 {
		t.Fatalf("after the window: %q, want b every other pick", got)
	}
}
