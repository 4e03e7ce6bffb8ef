package balancer

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injected clock that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time                 { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration)        { c.ns.Add(int64(d)) }
func (c *fakeClock) Nanos() int64                   { return c.ns.Load() }
func (c *fakeClock) pick(exclude ...*Backend) *Pick { return &Pick{Now: c.Nanos(), Exclude: exclude} }

// seeded returns a deterministic, concurrency-safe random source.
func seeded(seed uint64) func() uint64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Uint64()
	}
}

// specs builds active specs named a, b, c... with the given weights.
func specs(weights ...int) []Spec {
	out := make([]Spec, len(weights))
	for i, w := range weights {
		out[i] = Spec{ID: name(i), Addr: "10.0.0." + strconv.Itoa(i+1) + ":3000", Weight: w, Source: "static"}
	}
	return out
}

// name is the ID of the i-th backend of specs: "a".."z", then "b26"...
func name(i int) string {
	if i < 26 {
		return string(rune('a' + i))
	}
	return "b" + strconv.Itoa(i)
}

// newTest returns a Balancer with a fake clock and a seeded rand, populated with specs.
func newTest(t testing.TB, p Policy, sp []Spec, opts ...Option) (*Balancer, *fakeClock) {
	t.Helper()
	c := newClock()
	opts = append([]Option{WithClock(c.Now), WithRand(seeded(1))}, opts...)
	b := New(p, opts...)
	b.Update(sp)
	if got := len(b.Snapshot().Backends); got != len(sp) {
		t.Fatalf("snapshot has %d backends, want %d", got, len(sp))
	}
	return b, c
}

// ids places n sessions and returns the concatenated IDs ("-" for nil).
func placeIDs(b *Balancer, c *fakeClock, n int) string {
	out := ""
	for range n {
		be := b.Place(c.pick())
		if be == nil {
			out += "-"
			continue
		}
		out += be.ID
	}
	return out
}
