package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"sioproxy/internal/fakeclock"
)

func newFakeClock() *fakeclock.Clock { return fakeclock.New(time.Unix(1_700_000_000, 0)) }

// closer records the drain scheduler's closes against backends with sessions left, of which
// held can be closed now (the others are between polls, or held by another replica).
type closer struct {
	mu     sync.Mutex
	left   map[string]int
	held   map[string]int
	closes chan string
}

func (c *closer) close(id string, n int) (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := min(n, c.held[id])
	c.left[id] -= k
	c.held[id] -= k
	if k > 0 {
		c.closes <- id
	}
	return k, c.left[id]
}

func (c *closer) hold(id string, n int) {
	c.mu.Lock()
	c.held[id] += n
	c.mu.Unlock()
}

func TestDrainSchedulerPacesCloses(t *testing.T) {
	clk := newFakeClock()
	cl := &closer{left: map[string]int{"b1": 3, "b2": 5}, held: map[string]int{"b1": 2, "b2": 5}, closes: make(chan string, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newDrainScheduler(ctx, zap.NewNop(), clk, func() float64 { return 0.5 }, cl.close)
	if err := s.schedule("b1", 30*time.Second, 2); err != nil {
		t.Fatal(err)
	}
	if d := clk.NextWait(t); d != 30*time.Second {
		t.Fatalf("first wait %v, want the 30s deadline", d)
	}
	clk.Advance(29 * time.Second)
	select {
	case id := <-cl.closes:
		t.Fatalf("closed a session of %s before the deadline", id)
	default:
	}
	clk.Advance(time.Second)
	for i := 0; i < 2; i++ {
		if id := <-cl.closes; id != "b1" {
			t.Fatalf("closed %s", id)
		}
		// rate 2/s, jitter 0.5: the mean interval, 500ms.
		if d := clk.NextWait(t); d != 500*time.Millisecond {
			t.Fatalf("interval %v after close %d, want 500ms", d, i)
		}
		clk.Advance(500 * time.Millisecond)
	}
	// The third session cannot be closed now: the schedule keeps trying at its pace, and closes it
	// once it can.
	for i := 0; i < 3; i++ {
		if d := clk.NextWait(t); d != 500*time.Millisecond {
			t.Fatalf("interval %v while a session is held elsewhere, want 500ms", d)
		}
		if i == 2 {
			cl.hold("b1", 1) // now it can be closed: at the next tick
		}
		clk.Advance(500 * time.Millisecond)
	}
	if id := <-cl.closes; id != "b1" {
		t.Fatalf("closed %s", id)
	}
	// No session left: the schedule ends by itself and forgets the backend.
	waitUntil(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.active) == 0 })

	// An undrain cancels a pending schedule: nothing is closed after its deadline.
	if err := s.schedule("b2", time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	clk.NextWait(t)
	s.cancel("b2")
	clk.Advance(2 * time.Minute)
	cancel()
	s.wait()
	if cl.left["b2"] != 5 {
		t.Fatalf("a cancelled drain closed %d sessions", 5-cl.left["b2"])
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
