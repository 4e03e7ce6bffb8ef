package balancer

import (
	"math"
	"strconv"
	"testing"
)

// assign maps keys to backend IDs with no load.
func assign(t *testing.T, b *Balancer, c *fakeClock, keys []uint64) []string {
	t.Helper()
	out := make([]string, len(keys))
	p := &Pick{HasKey: true}
	for i, k := range keys {
		p.Key, p.Now = k, c.Nanos()
		be := b.Place(p)
		if be == nil {
			t.Fatal("no placement")
		}
		out[i] = be.ID
	}
	return out
}

func hashKeys(n int) []uint64 {
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = HashKey([]byte("user-" + strconv.Itoa(i)))
	}
	return keys
}

func TestHashStableForAKey(t *testing.T) {
	b, c := newTest(t, NewHash(0.25), specs(1, 1, 1, 1, 1))
	k := HashKey([]byte("alice"))
	first := b.Place(&Pick{Key: k, HasKey: true, Now: c.Nanos()})
	for range 20 {
		if be := b.Place(&Pick{Key: k, HasKey: true, Now: c.Nanos()}); be != first {
			t.Fatalf("key moved from %s to %s with no load", first.ID, be.ID)
		}
	}
}

func TestHashMinimalDisruption(t *testing.T) {
	keys := hashKeys(40_000)
	for _, n := range []int{3, 10, 30} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			w := make([]int, n+1)
			for i := range w {
				w[i] = 1
			}
			b, c := newTest(t, NewHash(0.25), specs(w[:n]...), WithSlowStart(0))
			before := assign(t, b, c, keys)
			b.Update(specs(w...)) // add one
			after := assign(t, b, c, keys)
			added := name(n)
			moved := 0
			for i := range keys {
				if before[i] != after[i] {
					moved++
					if after[i] != added {
						t.Fatalf("key moved %s -> %s, not to the new backend", before[i], after[i])
					}
				}
			}
			if frac := float64(moved) / float64(len(keys)); frac > 1.3/float64(n+1) || frac < 0.7/float64(n+1) {
				t.Fatalf("add: %.4f of keys moved, want about 1/%d", frac, n+1)
			}
			// Remove a middle backend.
			gone := name(n / 2)
			var sp []Spec
			for _, s := range specs(w...) {
				if s.ID != gone {
					sp = append(sp, s)
				}
			}
			b.Update(sp)
			final := assign(t, b, c, keys)
			moved = 0
			for i := range keys {
				if after[i] != final[i] {
					moved++
					if after[i] != gone {
						t.Fatalf("key on %s moved though %s was removed", after[i], gone)
					}
				}
			}
			if frac := float64(moved) / float64(len(keys)); frac > 1.3/float64(n+1) {
				t.Fatalf("remove: %.4f of keys moved, want about 1/%d", frac, n+1)
			}
		})
	}
}

func TestHashWeightedShares(t *testing.T) {
	keys := hashKeys(60_000)
	b, c := newTest(t, NewHash(-1), specs(1, 2, 3))
	count := map[string]int{}
	for _, id := range assign(t, b, c, keys) {
		count[id]++
	}
	for id, want := range map[string]float64{"a": 1.0 / 6, "b": 2.0 / 6, "c": 3.0 / 6} {
		if got := float64(count[id]) / float64(len(keys)); math.Abs(got-want) > 0.015 {
			t.Fatalf("%s share %.3f, want %.3f", id, got, want)
		}
	}
	// Equal weights: uniform within 3%.
	b2, c2 := newTest(t, NewHash(0.25), specs(1, 1, 1, 1, 1, 1, 1, 1, 1, 1))
	count = map[string]int{}
	for _, id := range assign(t, b2, c2, keys) {
		count[id]++
	}
	for id, n := range count {
		if got := float64(n) / float64(len(keys)); math.Abs(got-0.1) > 0.003 {
			t.Fatalf("%s share %.4f, want 0.1", id, got)
		}
	}
}

// TestHashBoundedLoads places 100k sessions with a skewed key distribution (one key is half the
// traffic) while sessions end, and checks the bound at every placement.
func TestHashBoundedLoads(t *testing.T) {
	for _, tt := range []struct {
		n   int
		eps float64
	}{{3, 0.25}, {10, 0.25}, {30, 0.1}} {
		t.Run(strconv.Itoa(tt.n), func(t *testing.T) {
			w := make([]int, tt.n)
			for i := range w {
				w[i] = 1
			}
			rnd := seeded(7)
			b, c := newTest(t, NewHash(tt.eps), specs(w...))
			s := b.Snapshot()
			hot := HashKey([]byte("hot-tenant"))
			var preferred *Backend
			var live []*Backend // FIFO of live sessions
			var total int64
			spilled := 0
			const placements, maxLive = 100_000, 3000
			p := &Pick{HasKey: true}
			for i := range placements {
				p.Key, p.Now = hot, c.Nanos()
				if rnd()%2 == 0 {
					p.Key = HashKey([]byte("k" + strconv.Itoa(int(rnd()%10_000))))
				}
				be := b.Place(p)
				if be == nil {
					t.Fatalf("placement %d: nil", i)
				}
				if p.Key == hot {
					if preferred == nil {
						preferred = be
					} else if be != preferred {
						spilled++
					}
				}
				be.Sessions.Add(1)
				total++
				live = append(live, be)
				bound := int64(math.Ceil((1 + tt.eps) * float64(total) / float64(tt.n)))
				if got := be.Load(); got > bound {
					t.Fatalf("placement %d: %s has %d sessions, bound %d (total %d)", i, be.ID, got, bound, total)
				}
				if i < maxLive { // no session has ended yet: the bound holds for every backend
					for _, x := range s.Backends {
						if x.Load() > bound {
							t.Fatalf("placement %d: %s has %d > bound %d", i, x.ID, x.Load(), bound)
						}
					}
				}
				if len(live) > maxLive { // end a random live session
					j := int(rnd() % uint64(len(live)))
					live[j].Sessions.Add(-1)
					live[j] = live[len(live)-1]
					live = live[:len(live)-1]
					total--
				}
			}
			if spilled == 0 {
				t.Fatal("the hot key never left its preferred backend: the bound was not exercised")
			}
		})
	}
}

func TestHashNoKeyUsesRand(t *testing.T) {
	b, c := newTest(t, NewHash(0.25), specs(1, 1, 1), WithRand(seeded(3)))
	seen := map[string]bool{}
	for range 100 {
		seen[b.Place(c.pick()).ID] = true
	}
	if len(seen) != 3 {
		t.Fatalf("keyless placements reached %d backends, want 3", len(seen))
	}
}

func TestHashSkipsUnavailableInKeyOrder(t *testing.T) {
	b, c := newTest(t, NewHash(0.25), specs(1, 1, 1, 1))
	k := HashKey([]byte("bob"))
	first := b.Place(&Pick{Key: k, HasKey: true, Now: c.Nanos()})
	second := b.Place(&Pick{Key: k, HasKey: true, Now: c.Nanos(), Exclude: []*Backend{first}})
	if second == nil || second == first {
		t.Fatalf("excluded preferred backend: got %v", second)
	}
	third := b.Place(&Pick{Key: k, HasKey: true, Now: c.Nanos(), Exclude: []*Backend{first}})
	if third != second {
		t.Fatalf("second choice not stable: %v vs %v", third, second)
	}
}

func TestHashKey(t *testing.T) {
	if HashKey([]byte("a")) == HashKey([]byte("b")) || HashKey(nil) == HashKey([]byte{0}) {
		t.Fatal("trivial collision")
	}
	if HashKey([]byte("user-1")) != HashKey([]byte("user-1")) {
		t.Fatal("not deterministic")
	}
	k := []byte("some-key")
	if n := testing.AllocsPerRun(100, func() { _ = HashKey(k) }); n != 0 {
		t.Fatalf("HashKey allocates %v", n)
	}
}
