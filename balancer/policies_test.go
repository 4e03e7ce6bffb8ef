package balancer

import (
	"math"
	"testing"
)

// script returns a random source that replays vals in a loop.
func script(vals ...uint64) func() uint64 {
	i := 0
	return func() uint64 {
		v := vals[i%len(vals)]
		i++
		return v
	}
}

// Random values that sampleWeighted maps to the first, second and third of three equal weights.
const (
	rFirst  = uint64(0)
	rSecond = uint64(1) << 63
	rThird  = math.MaxUint64
)

func TestLeastSessions(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		loads   []int64
		rand    uint64
		want    string
	}{
		{"fewest", []int{1, 1, 1}, []int64{3, 1, 2}, rFirst, "b"},
		{"tunnels count", []int{1, 1, 1}, []int64{3, 1, 2}, rFirst, "b"},
		{"weighted: (4+1)/2 < (3+1)/1", []int{2, 1}, []int64{4, 3}, rFirst, "a"},
		{"weighted: (7+1)/2 > (2+1)/1", []int{2, 1}, []int64{7, 2}, rFirst, "b"},
		{"idle: heavier first", []int{1, 3, 1}, []int64{0, 0, 0}, rFirst, "b"},
		{"tie from offset 0", []int{1, 1, 1}, []int64{0, 0, 0}, rFirst, "a"},
		{"tie from offset 1", []int{1, 1, 1}, []int64{0, 0, 0}, rSecond, "b"},
		{"tie from offset 2", []int{1, 1, 1}, []int64{0, 0, 0}, rThird, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := newTest(t, NewLeastSessions(), specs(tt.weights...), WithRand(script(tt.rand)))
			for i, be := range b.Snapshot().Backends {
				if tt.name == "tunnels count" {
					be.Tunnels.Store(tt.loads[i])
				} else {
					be.Sessions.Store(tt.loads[i])
				}
			}
			if be := b.Place(c.pick()); be == nil || be.ID != tt.want {
				t.Fatalf("got %v, want %s", be, tt.want)
			}
		})
	}
}

func TestP2CPicksLighterOfTwo(t *testing.T) {
	tests := []struct {
		name  string
		rand  []uint64
		loads []int64
		want  string
	}{
		{"a vs b, b lighter", []uint64{rFirst, rSecond}, []int64{5, 1, 0}, "b"},
		{"a vs b, a lighter", []uint64{rFirst, rSecond}, []int64{1, 5, 0}, "a"},
		{"c never drawn", []uint64{rThird, rFirst}, []int64{0, 9, 9}, "a"},
		{"duplicate draw redrawn", []uint64{rSecond, rSecond, rThird}, []int64{0, 3, 2}, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := newTest(t, NewP2C(), specs(1, 1, 1), WithRand(script(tt.rand...)))
			for i, be := range b.Snapshot().Backends {
				be.Sessions.Store(tt.loads[i])
			}
			if be := b.Place(c.pick()); be == nil || be.ID != tt.want {
				t.Fatalf("got %v, want %s", be, tt.want)
			}
		})
	}
}

func TestP2CFallsBackWhenSamplingMisses(t *testing.T) {
	// Only c is available; every draw hits a: the scan finds c.
	b, c := newTest(t, NewP2C(), specs(1, 1, 1), WithRand(script(rFirst)))
	s := b.Snapshot()
	if be := b.Place(c.pick(s.ByID("a"), s.ByID("b"))); be == nil || be.ID != "c" {
		t.Fatalf("got %v, want c", be)
	}
	if be := b.Place(c.pick(s.ByID("a"), s.ByID("b"), s.ByID("c"))); be != nil {
		t.Fatalf("all excluded: got %v", be)
	}
}

// TestWeightedShares checks that the load-aware policies converge to the weights when every
// placement becomes a live session.
func TestWeightedShares(t *testing.T) {
	for _, name := range []string{"p2c", "least_sessions", "round_robin"} {
		t.Run(name, func(t *testing.T) {
			p := testPolicy(name)
			b, c := newTest(t, p, specs(3, 1, 6))
			const n = 30000
			for range n {
				be := b.Place(c.pick())
				be.Sessions.Add(1)
			}
			s := b.Snapshot()
			for i, w := range []float64{0.3, 0.1, 0.6} {
				got := float64(s.Backends[i].Sessions.Load()) / n
				if math.Abs(got-w) > 0.02 {
					t.Fatalf("%s share %.3f, want %.2f", s.Backends[i].ID, got, w)
				}
			}
		})
	}
}
