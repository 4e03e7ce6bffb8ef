package daemon

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"go.uber.org/zap"

	"sioproxy/admin"
	"sioproxy/health"
)

// Bounds of a drain's parameters: the admin API's (it refuses values outside them with 400); the
// scheduler checks again, so that no caller can make it misbehave.
const (
	MaxDrainDeadline = admin.MaxDrainDeadline
	MinDrainRate     = admin.MinDrainRate // sessions closed per second: one every 100 s
	MaxDrainRate     = admin.MaxDrainRate // sessions closed per second
)

// drainScheduler closes a drained backend's remaining sessions after a deadline, rate per second
// with jitter, so that their clients reconnect elsewhere without a storm. One schedule per backend;
// a new drain or an undrain of it replaces or cancels the old one.
type drainScheduler struct {
	log   *zap.Logger
	clock health.Clock
	rand  func() float64                                   // in [0, 1)
	close func(backendID string, n int) (closed, left int) // ends up to n sessions of a backend; how many it did, how many are left

	mu     sync.Mutex
	ctx    context.Context
	active map[string]context.CancelFunc
	wg     sync.WaitGroup
}

func newDrainScheduler(ctx context.Context, log *zap.Logger, clock health.Clock, rand func() float64, close func(string, int) (int, int)) *drainScheduler {
	return &drainScheduler{log: log, clock: clock, rand: rand, close: close, ctx: ctx, active: map[string]context.CancelFunc{}}
}

// checkDrain validates a drain's parameters: deadline in [0, MaxDrainDeadline], rate a finite
// number in [MinDrainRate, MaxDrainRate].
func checkDrain(deadline time.Duration, rate float64) error {
	if deadline < 0 || deadline > MaxDrainDeadline {
		return fmt.Errorf("deadline must be between 0 and %s (got %s)", MaxDrainDeadline, deadline)
	}
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate < MinDrainRate || rate > MaxDrainRate {
		return fmt.Errorf("rate must be a number of sessions per second in [%g, %g] (got %v)", MinDrainRate, MaxDrainRate, rate)
	}
	return nil
}

// schedule replaces the schedule of a backend: with deadline > 0 its sessions are closed from
// then on; deadline 0 only cancels an earlier schedule.
func (s *drainScheduler) schedule(id string, deadline time.Duration, rate float64) error {
	if err := checkDrain(deadline, rate); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancelLocked(id)
	if deadline == 0 {
		return nil
	}
	if s.ctx.Err() != nil {
		return errors.New("stopping")
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.active[id] = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(ctx, id, deadline, rate)
	}()
	return nil
}

// cancel stops the schedule of a backend, if any.
func (s *drainScheduler) cancel(id string) {
	s.mu.Lock()
	s.cancelLocked(id)
	s.mu.Unlock()
}

func (s *drainScheduler) cancelLocked(id string) {
	if cancel := s.active[id]; cancel != nil {
		cancel()
		delete(s.active, id)
	}
}

// wait waits for every schedule to end (after the scheduler's context was cancelled).
func (s *drainScheduler) wait() { s.wg.Wait() }

func (s *drainScheduler) run(ctx context.Context, id string, deadline time.Duration, rate float64) {
	defer func() {
		s.mu.Lock()
		if ctx.Err() == nil { // ended by itself, not replaced or cancelled: its entry is still ours
			s.cancelLocked(id)
		}
		s.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return
	case <-s.clock.After(deadline):
	}
	interval := time.Duration(float64(time.Second) / rate)
	closed := 0
	for {
		n, left := s.close(id, 1)
		closed += n
		if left == 0 {
			s.log.Info("drained backend has no sessions left", zap.String("backend", id), zap.Int("closed", closed))
			return
		}
		// A session this process cannot close now (between polls, or held by another replica) is
		// tried again at the next tick; one held elsewhere leaves this table when it ends there.
		// Mean interval, spread over [0.75, 1.25) of it.
		wait := time.Duration(float64(interval) * (0.75 + 0.5*s.rand()))
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(wait):
		}
	}
}
