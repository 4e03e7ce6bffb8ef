package mirror

import (
	"context"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/proxy"
)

var _ proxy.Mirror = (*Mirror)(nil)

// Defaults of a Mirror.
const (
	DefaultQueue       = 256
	DefaultMaxSessions = 10000
	DefaultCloseGrace  = 3 * time.Second
	DefaultMaxHTTPBody = 64 << 10
	DefaultTargetEIO   = 4
	shards             = 16
)

// Mirror implements proxy.Mirror: it samples new sessions, runs a shadow client for each mirrored
// one, and keeps the comparison. Create it with New; it is safe for concurrent use.
type Mirror struct {
	log     *zap.Logger
	targets *balancer.Balancer
	now     func() time.Time
	rand    func() float64

	enabled atomic.Bool
	sample  atomic.Uint64 // math.Float64bits of the fraction

	queue       int
	maxSessions int64
	closeGrace  time.Duration
	targetEIO   int
	maxHTTPBody int
	dialTimeout time.Duration

	seed   maphash.Seed
	shards [shards]sessionShard
	count  atomic.Int64 // sessions in the shards
	wsSeq  atomic.Uint64

	idleMu sync.Mutex
	idle   chan struct{} // closed when the last session ends; replaced when one starts

	stats *stats
	http  *httpMirror
}

type sessionShard struct {
	mu sync.RWMutex
	m  map[string]*session
}

// Option configures a Mirror.
type Option func(*Mirror)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(m *Mirror) { m.now = now } }

// WithRand injects the sampling randomness: a function returning values in [0, 1).
func WithRand(r func() float64) Option { return func(m *Mirror) { m.rand = r } }

// WithQueue sets the per-session queue length (packets).
func WithQueue(n int) Option { return func(m *Mirror) { m.queue = n } }

// WithMaxSessions bounds the number of sessions mirrored at once; new ones beyond it are skipped.
func WithMaxSessions(n int) Option { return func(m *Mirror) { m.maxSessions = int64(n) } }

// WithCloseGrace sets how long an ending session waits for the shadow's outstanding acks.
func WithCloseGrace(d time.Duration) Option { return func(m *Mirror) { m.closeGrace = d } }

// WithTargetEIO sets the Engine.IO revision (3 or 4) the shadow speaks to the target.
func WithTargetEIO(eio int) Option { return func(m *Mirror) { m.targetEIO = eio } }

// WithMaxHTTPBody caps the body of a mirrored plain HTTP request; larger ones are not mirrored.
func WithMaxHTTPBody(n int) Option { return func(m *Mirror) { m.maxHTTPBody = n } }

// WithDialTimeout sets the shadow's connect and handshake timeout.
func WithDialTimeout(d time.Duration) Option { return func(m *Mirror) { m.dialTimeout = d } }

// New builds a Mirror that places shadow sessions with targets (whose backends the caller keeps up to
// date, see UpdateTargets). It starts disabled with sample 1.
func New(log *zap.Logger, targets *balancer.Balancer, opts ...Option) *Mirror {
	m := &Mirror{
		log:         log,
		targets:     targets,
		now:         time.Now,
		rand:        rand.Float64,
		queue:       DefaultQueue,
		maxSessions: DefaultMaxSessions,
		closeGrace:  DefaultCloseGrace,
		targetEIO:   DefaultTargetEIO,
		maxHTTPBody: DefaultMaxHTTPBody,
		dialTimeout: 5 * time.Second,
		seed:        maphash.MakeSeed(),
		stats:       newStats(),
	}
	for _, o := range opts {
		o(m)
	}
	if m.targetEIO != 3 {
		m.targetEIO = 4
	}
	m.SetSample(1)
	for i := range m.shards {
		m.shards[i].m = make(map[string]*session)
	}
	m.idle = make(chan struct{})
	close(m.idle)
	m.http = newHTTPMirror(m)
	return m
}

// Enable turns mirroring of new sessions on or off. Sessions already mirrored go on.
func (m *Mirror) Enable(on bool) { m.enabled.Store(on) }

// Enabled reports whether new sessions are sampled.
func (m *Mirror) Enabled() bool { return m.enabled.Load() }

// SetSample sets the fraction of new sessions mirrored, clamped to [0, 1].
func (m *Mirror) SetSample(f float64) {
	if math.IsNaN(f) || f < 0 {
		f = 0
	}
	m.sample.Store(math.Float64bits(min(f, 1)))
}

// Sample returns the fraction of new sessions mirrored.
func (m *Mirror) Sample() float64 { return math.Float64frombits(m.sample.Load()) }

// UpdateTargets publishes the shadow backends (static config or Consul discovery).
func (m *Mirror) UpdateTargets(specs []balancer.Spec) { m.targets.Update(specs) }

// Targets is the balancer that places shadow sessions.
func (m *Mirror) Targets() *balancer.Balancer { return m.targets }

// Active returns the number of sessions being mirrored.
func (m *Mirror) Active() int { return int(m.stats.sessionsActive.Load()) }

// WaitIdle waits until no session is being mirrored (every shadow closed) or ctx ends.
func (m *Mirror) WaitIdle(ctx context.Context) error {
	for {
		m.idleMu.Lock()
		ch := m.idle
		m.idleMu.Unlock()
		select {
		case <-ch:
			if m.stats.sessionsActive.Load() == 0 {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Report returns the totals and the comparison so far.
func (m *Mirror) Report() Report {
	r := Report{Enabled: m.Enabled(), Sample: m.Sample(), Targets: []string{}}
	for _, be := range m.targets.Snapshot().Backends {
		r.Targets = append(r.Targets, be.ID)
	}
	m.stats.report(&r)
	return r
}

// sampled decides whether a new session is mirrored.
func (m *Mirror) sampled() bool {
	if !m.enabled.Load() {
		return false
	}
	f := m.Sample()
	if f <= 0 || (f < 1 && m.rand() >= f) {
		m.stats.sessionsSkipped.Add(1)
		return false
	}
	if m.stats.sessionsActive.Load() >= m.maxSessions {
		m.stats.sessionsSkipped.Add(1)
		return false
	}
	return true
}

func (m *Mirror) shard(sid []byte) *sessionShard {
	return &m.shards[maphash.Bytes(m.seed, sid)%shards]
}

func (m *Mirror) lookup(sid []byte) *session {
	if m.count.Load() == 0 {
		return nil
	}
	sh := m.shard(sid)
	sh.mu.RLock()
	s := sh.m[string(sid)]
	sh.mu.RUnlock()
	return s
}

// OpenPolling implements proxy.Mirror: it samples the new polling session.
func (m *Mirror) OpenPolling(sid string, req *fasthttp.Request) {
	if sid == "" || !m.sampled() {
		return
	}
	s := m.newSession(sid, req)
	sh := m.shard([]byte(sid))
	sh.mu.Lock()
	if _, dup := sh.m[sid]; dup {
		sh.mu.Unlock()
		return
	}
	sh.m[sid] = s
	m.count.Add(1)
	sh.mu.Unlock()
	s.start()
}

// Mirrored implements proxy.Mirror. It does not allocate.
func (m *Mirror) Mirrored(sid []byte) bool { return m.lookup(sid) != nil }

// ClientPolling implements proxy.Mirror: the packets of a polling POST body are queued for replay.
func (m *Mirror) ClientPolling(sid []byte, body []byte) {
	if s := m.lookup(sid); s != nil {
		if s.failed.Load() {
			m.stats.packetsDropped.Add(1) // the shadow is gone: counted, not parsed
			return
		}
		s.payload(false, body)
	}
}

// ServerPolling implements proxy.Mirror: acks and events of a poll response are queued for comparison.
func (m *Mirror) ServerPolling(sid []byte, body []byte) {
	if s := m.lookup(sid); s != nil && !s.failed.Load() {
		s.payload(true, body)
	}
}

// Tunnel implements proxy.Mirror. A WebSocket-only session (rawSID "") is sampled here; an upgrade
// is mirrored when its polling session is.
func (m *Mirror) Tunnel(rawSID string, req *fasthttp.Request, extensions []byte) proxy.MirrorTunnel {
	if rawSID != "" {
		s := m.lookup([]byte(rawSID))
		if s == nil || s.failed.Load() {
			return nil // unmirrored, or its shadow is gone: the proxy parks the tunnel
		}
		return newTee(s, false, extensions)
	}
	if !m.sampled() {
		return nil
	}
	s := m.newSession("ws-"+strconv.FormatUint(m.wsSeq.Add(1), 10), req)
	s.start()
	return newTee(s, true, extensions)
}

// Close implements proxy.Mirror: the primary session ended.
func (m *Mirror) Close(sid string) {
	if m.count.Load() == 0 {
		return
	}
	sh := m.shard([]byte(sid))
	sh.mu.Lock()
	s := sh.m[sid]
	if s != nil {
		delete(sh.m, sid)
		m.count.Add(-1)
	}
	sh.mu.Unlock()
	if s != nil {
		s.close()
	}
}

// forget removes a session that ended by itself (a closed upgraded tunnel) from the shards.
func (m *Mirror) forget(s *session) {
	sh := m.shard([]byte(s.sid))
	sh.mu.Lock()
	if sh.m[s.sid] == s {
		delete(sh.m, s.sid)
		m.count.Add(-1)
	}
	sh.mu.Unlock()
}

// sessionStarted and sessionEnded keep the active count and the idle channel.
func (m *Mirror) sessionStarted() {
	m.idleMu.Lock()
	if m.stats.sessionsActive.Add(1) == 1 {
		m.idle = make(chan struct{})
	}
	m.idleMu.Unlock()
	m.stats.sessionsMirrored.Add(1)
}

func (m *Mirror) sessionEnded() {
	m.idleMu.Lock()
	if m.stats.sessionsActive.Add(-1) == 0 {
		close(m.idle)
	}
	m.idleMu.Unlock()
}

// HTTP implements proxy.Mirror: a sampled plain HTTP request is copied to a target, fire and forget.
func (m *Mirror) HTTP(req *fasthttp.Request) {
	if !m.enabled.Load() {
		return
	}
	f := m.Sample()
	if f <= 0 || (f < 1 && m.rand() >= f) {
		return
	}
	m.http.send(req)
}
