package balancer

import (
	"math/rand/v2"
	"time"
)

// env is what every snapshot of one Balancer shares: fixed at New, read on the hot path.
type env struct {
	rand      func() uint64
	now       func() time.Time
	tagger    func(id string) string
	slowStart int64 // nanos; 0 = off

	cooldown         int64 // nanos
	maxEjectFraction float64
	failThreshold    int64 // consecutive failures that eject

	interval    int64 // nanos per handshake token; 0 = no rate limit
	burst       int64
	maxSessions int64 // 0 = no cap
}

func defaultEnv() *env {
	return &env{
		rand:          rand.Uint64,
		now:           time.Now,
		failThreshold: 1,
	}
}

// Option configures a Balancer at New. Without options a Balancer has no slow start, no passive
// ejection and no admission limits: the process package passes the config's values.
type Option func(*Balancer)

// WithTagger sets the function that computes sid tags when a snapshot is built (typically
// sticky.TagFor). Without it every Backend.Tag is "".
func WithTagger(f func(id string) string) Option {
	return func(b *Balancer) { b.env.tagger = f }
}

// WithClock injects the clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(b *Balancer) {
		if now != nil {
			b.env.now = now
		}
	}
}

// WithRand injects the source of randomness (default math/rand/v2.Uint64). It must be safe for
// concurrent use if Place is called concurrently.
func WithRand(r func() uint64) Option {
	return func(b *Balancer) {
		if r != nil {
			b.env.rand = r
		}
	}
}

// WithSlowStart sets the slow-start window: a backend that joins, returns from Draining, or whose
// ejection ends ramps its effective weight linearly from 10% to 100% over window. 0 turns slow
// start off. Backends of the first populated snapshot do not ramp (there is nothing to spare them).
func WithSlowStart(window time.Duration) Option {
	return func(b *Balancer) { b.env.slowStart = max(int64(window), 0) }
}

// WithEjection sets the passive-ejection cooldown and the largest fraction of the active backends
// that may be ejected at once (rounded down; 0.5 of 3 backends = 1).
func WithEjection(cooldown time.Duration, maxFraction float64) Option {
	return func(b *Balancer) {
		b.env.cooldown = max(int64(cooldown), 0)
		b.env.maxEjectFraction = min(max(maxFraction, 0), 1)
	}
}

// WithFailureThreshold sets how many consecutive failures (not interrupted by ReportSuccess) eject
// a backend. Default 1.
func WithFailureThreshold(n int) Option {
	return func(b *Balancer) { b.env.failThreshold = int64(max(n, 1)) }
}

// WithAdmission bounds reconnect storms per backend: at most rate handshakes per second with bursts
// of burst (rate <= 0: no rate limit), and at most maxSessions live sessions (<= 0: no cap). A
// backend over either limit is skipped; when all are, Place returns nil with reason AllFull.
func WithAdmission(rate float64, burst int, maxSessions int64) Option {
	return func(b *Balancer) {
		b.env.interval, b.env.burst = 0, 0
		if rate > 0 {
			b.env.interval = max(int64(float64(time.Second)/rate), 1)
			b.env.burst = int64(max(burst, 1))
		}
		b.env.maxSessions = max(maxSessions, 0)
	}
}
