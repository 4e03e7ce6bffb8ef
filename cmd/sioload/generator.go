package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"sioproxy/eioclient"
)

// Phase is where a run is.
type Phase string

// Run phases.
const (
	PhaseRamp  Phase = "ramp"  // sessions are being started (and emit once connected)
	PhaseRun   Phase = "run"   // every session started; emitting until -duration ends
	PhaseDrain Phase = "drain" // waiting for outstanding acks
	PhaseHold  Phase = "hold"  // sessions idle (-hold)
	PhaseClose Phase = "close" // closing sessions
)

// generator runs one load test. Counters are atomics shared by every session goroutine.
type generator struct {
	cfg Config
	now func() time.Time

	text string // the text payload, shared
	bin  []byte // the binary payload, shared (never modified)

	phase      atomic.Value // Phase
	started    atomic.Int64 // sessions started
	ok         atomic.Int64 // sessions connected
	failed     atomic.Int64 // sessions that never connected
	alive      atomic.Int64 // sessions connected right now
	dropped    atomic.Int64 // connected sessions that ended on an error before the close phase
	emits      atomic.Uint64
	acks       atomic.Uint64
	pending    atomic.Int64  // emits waiting for their ack
	ackSeen    chan struct{} // 1-slot: an ack arrived (drain waits on it)
	stopping   atomic.Bool   // close phase: ack failures are lost acks, sessions ending are no drops
	polling    atomic.Int64  // sessions whose transport after connect was polling
	websocket  atomic.Int64  // ... websocket
	lastDialNs atomic.Int64  // when the last successful dial completed

	handshake *histogram // dial latency
	latency   *histogram // ack latency, from the scheduled send time

	errMu sync.Mutex
	errs  map[string]uint64
}

// newGenerator prepares a run of cfg; now is the clock (time.Now outside tests).
func newGenerator(cfg Config, now func() time.Time) *generator {
	g := &generator{
		cfg:       cfg,
		now:       now,
		ackSeen:   make(chan struct{}, 1),
		handshake: newHistogram(),
		latency:   newHistogram(),
		errs:      make(map[string]uint64),
	}
	g.phase.Store(PhaseRamp)
	b := make([]byte, cfg.Payload)
	r := rand.New(rand.NewPCG(cfg.Seed, 0))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	g.text = string(b)
	g.bin = b
	return g
}

// countErr adds one error under "where/kind".
func (g *generator) countErr(where string, err error) {
	key := where + "/" + string(eioclient.KindOf(err))
	g.errMu.Lock()
	g.errs[key]++
	g.errMu.Unlock()
}

// errors returns a copy of the error counts.
func (g *generator) errors() map[string]uint64 {
	g.errMu.Lock()
	defer g.errMu.Unlock()
	m := make(map[string]uint64, len(g.errs))
	for k, v := range g.errs {
		m[k] = v
	}
	return m
}

// Run executes the load test: ramp, run, drain, hold, close. ctx ends it early (the summary
// still covers what ran). progress, if not nil, gets a snapshot every tick until Run returns.
func (g *generator) Run(ctx context.Context, tick time.Duration, progress func(Snapshot)) Summary {
	start := g.now()
	if progress != nil {
		stop := make(chan struct{})
		done := make(chan struct{})
		defer func() { close(stop); <-done }()
		go func() {
			defer close(done)
			t := time.NewTicker(tick)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					progress(g.snapshot(start))
				}
			}
		}()
	}

	emitCtx, stopEmit := context.WithCancel(ctx)
	defer stopEmit()
	holdCtx, stopHold := context.WithCancel(ctx)
	defer stopHold()

	var wg sync.WaitGroup       // session goroutines
	var emitting sync.WaitGroup // sessions that may still emit
	interval := time.Duration(float64(time.Second) / g.cfg.Ramp)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
ramp:
	for i := range g.cfg.Sessions {
		if wait := start.Add(time.Duration(i) * interval).Sub(g.now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				break ramp
			}
		}
		g.started.Add(1)
		wg.Add(1)
		emitting.Add(1)
		go func() {
			defer wg.Done()
			g.session(emitCtx, holdCtx, i, emitting.Done)
		}()
	}

	g.phase.Store(PhaseRun)
	rampEnd := g.now()
	emitsAtRampEnd := g.emits.Load()
	if wait := g.cfg.Duration; ctx.Err() == nil {
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	stopEmit()
	emitEnd := g.now()
	emitting.Wait() // no emit after this: the drain and the summary see final counts

	g.phase.Store(PhaseDrain)
	g.drain(ctx)
	sum := g.summary(start, rampEnd, emitEnd, emitsAtRampEnd)

	if g.cfg.Hold > 0 && ctx.Err() == nil {
		g.phase.Store(PhaseHold)
		timer.Reset(g.cfg.Hold)
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	sum.Sessions.Held = g.alive.Load()
	g.phase.Store(PhaseClose)
	g.stopping.Store(true)
	stopHold()
	wg.Wait()
	sum.Errors = g.errors()
	return sum
}

// drain waits until every ack came or cfg.Timeout passed without progress; what is still
// pending then counts as ack/timeout.
func (g *generator) drain(ctx context.Context) {
	t := time.NewTimer(g.cfg.Timeout)
	defer t.Stop()
	for g.pending.Load() > 0 {
		select {
		case <-g.ackSeen:
			t.Reset(g.cfg.Timeout) // Go >= 1.23: no stale tick to drain
		case <-t.C:
			g.errMu.Lock()
			g.errs["ack/timeout"] += uint64(max(g.pending.Load(), 0))
			g.errMu.Unlock()
			return
		case <-ctx.Done():
			return
		}
	}
}

// session runs one session: dial, emit until emitCtx ends, idle until holdCtx ends, close.
// emitted is called once the session will emit no more.
func (g *generator) session(emitCtx, holdCtx context.Context, i int, emitted func()) {
	var once sync.Once
	doneEmitting := func() { once.Do(emitted) }
	defer doneEmitting()
	opts := eioclient.Options{
		URL:     g.cfg.URL,
		Path:    g.cfg.Path,
		EIO:     g.cfg.EIO,
		Mode:    g.cfg.Mode,
		Timeout: g.cfg.Timeout,
	}
	if n := len(g.cfg.SourceAddrs); n > 0 {
		opts.LocalAddr = &net.TCPAddr{IP: g.cfg.SourceAddrs[i%n]}
	}
	t0 := g.now()
	c, err := eioclient.Dial(holdCtx, opts)
	if err != nil {
		if holdCtx.Err() == nil {
			g.failed.Add(1)
			g.countErr("connect", err)
		}
		return
	}
	g.handshake.Record(int64(g.now().Sub(t0)))
	g.ok.Add(1)
	g.alive.Add(1)
	g.lastDialNs.Store(g.now().UnixNano())
	if c.Transport() == "websocket" {
		g.websocket.Add(1)
	} else {
		g.polling.Add(1)
	}
	defer c.Close()

	if g.cfg.Rate > 0 {
		r := rand.New(rand.NewPCG(g.cfg.Seed, uint64(i)+1))
		if !g.emitLoop(emitCtx, c, r) {
			return
		}
	}
	doneEmitting()
	select {
	case <-holdCtx.Done():
	case <-c.Done():
	}
	if c.Err() != nil && !g.stopping.Load() {
		g.lost(c)
		return
	}
	g.alive.Add(-1)
}

// lost records a session that ended on its own.
func (g *generator) lost(c *eioclient.Conn) {
	g.alive.Add(-1)
	g.dropped.Add(1)
	g.countErr("session", c.Err())
}

// emitLoop emits at cfg.Rate (open loop: on schedule, whatever the acks do; latency counts from
// the scheduled time, so a stall shows up as latency instead of hiding as fewer emits). The
// first emit has a random phase so that sessions do not fire in step. It returns false when the
// session ended on its own.
func (g *generator) emitLoop(ctx context.Context, c *eioclient.Conn, r *rand.Rand) bool {
	period := time.Duration(float64(time.Second) / g.cfg.Rate)
	next := g.now().Add(time.Duration(r.Int64N(int64(period) + 1)))
	timer := time.NewTimer(next.Sub(g.now()))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return true
		case <-c.Done():
			g.lost(c)
			return false
		case <-timer.C:
			if ctx.Err() != nil { // both were ready and select picked the timer
				return true
			}
		}
		sched := next
		var arg any = g.text
		if g.cfg.BinaryRatio > 0 && r.Float64() < g.cfg.BinaryRatio {
			arg = g.bin
		}
		g.pending.Add(1)
		err := c.EmitAckFunc(g.cfg.Event, []any{arg}, func(_ []json.RawMessage, _ [][]byte, err error) {
			if err == nil {
				g.latency.Record(int64(g.now().Sub(sched)))
				g.acks.Add(1)
			} else if !g.stopping.Load() {
				g.countErr("ack", err)
			}
			g.pending.Add(-1) // last: once drain sees 0, every count above is in
			notify(g.ackSeen)
		})
		if err != nil {
			g.pending.Add(-1)
			g.countErr("emit", err)
		} else {
			g.emits.Add(1)
		}
		next = next.Add(period)
		timer.Reset(next.Sub(g.now()))
	}
}

// notify does a non-blocking send on a 1-slot channel.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
