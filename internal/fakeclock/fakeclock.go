// Package fakeclock is a manual clock for tests of code that takes a clock (Now and After): After
// registers a timer and reports its duration to NextWait, Advance moves time and fires the timers
// that are due.
package fakeclock

import (
	"sync"
	"testing"
	"time"
)

// Clock is a manual clock; its zero value is not usable, call New.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []timer
	waits  chan time.Duration
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// New returns a clock that reads start until it is advanced.
func New(start time.Time) *Clock {
	return &Clock{now: start, waits: make(chan time.Duration, 1000)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the time once the clock has been advanced by d.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, timer{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	c.waits <- d
	return ch
}

// Advance moves the clock by d and fires the timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.now) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- c.now
	}
	c.timers = kept
}

// NextWait waits (up to 5 s of real time) for the code under test to call After, and returns the
// duration it asked for.
func (c *Clock) NextWait(t testing.TB) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a timer")
		return 0
	}
}
