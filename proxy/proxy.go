// Package proxy is the fasthttp front of sioproxy: it classifies each request, routes Engine.IO
// requests to the backend that owns their session, forwards HTTP, tunnels WebSockets, answers
// Engine.IO-native errors, and drains gracefully.
package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// Settings are the reloadable knobs of a Proxy. A Proxy reads them through an atomic pointer, so a
// reload swaps them without touching sessions or tunnels.
type Settings struct {
	Paths              []string       // Engine.IO path prefixes
	TagSIDs            bool           // rewrite handshake sids to carry the backend tag
	SessionTTL         time.Duration  // idle expiry when the open packet gives no timers
	TTLMargin          time.Duration  // added to pingInterval+pingTimeout
	MaxBodyBytes       int            // request body cap (413 beyond)
	UpstreamTimeout    time.Duration  // backend response timeout (>= 60 s: long-polls)
	DialTimeout        time.Duration  // backend dial timeout
	TunnelIdleTimeout  time.Duration  // a tunnel silent both ways this long is closed
	MaxConnsPerBackend int            // pooled connections per backend
	MaxTunnels         int            // live WebSocket tunnels; an upgrade beyond gets 503 (0 = no limit)
	TrustedProxies     []netip.Prefix // peers whose X-Forwarded-For is believed
	AffinityCookie     string         // non-Engine.IO paths: cookie that pins a client to a backend
	HashKey            KeyFunc        // affinity key of a new session (nil: none)
	HeaderTimeout      time.Duration  // a client's request head must arrive within this (408 beyond; 0 = none)
	ReadTimeout        time.Duration  // a request body must arrive within this after its head (0 = 60 s)
	WriteTimeout       time.Duration  // a write to a client must progress within this (0 = 30 s)
}

// KeyFunc computes the affinity key of a request for the hash policy; ok is false when the request
// has no key.
type KeyFunc func(ctx *fasthttp.RequestCtx, clientIP netip.Addr) (key uint64, ok bool)

// rtConfig is Settings plus what is derived from them.
type rtConfig struct {
	Settings
	classifier *sticky.Classifier
	trusted    trustedNets
}

// Proxy routes requests to backends. Create it with New, serve with Serve, stop with Shutdown.
type Proxy struct {
	log      *zap.Logger
	balancer *balancer.Balancer
	ledger   *ledger // sessions: table entries and backend counters
	table    *sticky.Table
	now      func() time.Time

	rt        atomic.Pointer[rtConfig]
	upstreams sync.Map // backend ID -> *upstream (its connection pool)
	tunnels   *tunnelRegistry
	tunnelLog logEvery // the tunnel limit's log line, once a second at most
	// park relays idle tunnels without goroutines (Linux epoll); started on the first tunnel.
	parkOnce sync.Once
	park     atomic.Pointer[parker] // nil until started (read without parkOnce: counts, drains)
	parking  atomic.Int64           // tunnels between their 101 and the parker (tunnelCount)
	// aborts watches clients of pending long-polls (Linux epoll); started on the first one.
	abortOnce sync.Once
	aborts    *abortWatcher
	server    *fasthttp.Server
	metrics   Metrics
	mirror    Mirror // nil: no mirroring

	oversize  sync.Map     // *fasthttp.RequestHeader -> struct{}: heads declaring a body over the limit
	oversizeN atomic.Int64 // entries of oversize (none: nothing to look up)

	connWait    time.Duration // wait for a free backend connection at the limit
	postWait    time.Duration // a polling GET's wait for its session's POSTs (defaultPostWait)
	upgradeWait time.Duration // wait for a backend's answer to an upgrade (0: dial timeout + 10s)

	stopSweep chan struct{}
	sweepDone chan struct{}
	stopping  atomic.Bool
}

// Metrics receives events the proxy counts; nil methods are not allowed, use NopMetrics.
type Metrics interface {
	Request(kind Kind, status int, elapsed time.Duration)
	SIDUnknown()
	Handshake(backendID string)
	Unavailable(reason balancer.Reason) // a new session answered 503 (Retry-After): no backend could take it
	ListenerMetrics
}

// ListenerMetrics receives the events of the client-facing listener and the tunnel limit.
type ListenerMetrics interface {
	ClientConns(delta int)     // client connections opened (+1) or closed (-1)
	ClientConnsMax(n int)      // the limit on client connections (0 = none)
	ConnRefused(reason string) // a client connection closed at once: Refused* reasons
	TunnelRefused()            // an upgrade refused at the tunnel limit
	AcceptError()              // accept(2) failed (EMFILE, ...); the listener backs off and retries
}

// NopMetrics counts nothing.
type NopMetrics struct{}

// Request implements Metrics.
func (NopMetrics) Request(Kind, int, time.Duration) {}

// SIDUnknown implements Metrics.
func (NopMetrics) SIDUnknown() {}

// Handshake implements Metrics.
func (NopMetrics) Handshake(string) {}

// ClientConns implements Metrics.
func (NopMetrics) ClientConns(int) {}

// ClientConnsMax implements Metrics.
func (NopMetrics) ClientConnsMax(int) {}

// ConnRefused implements Metrics.
func (NopMetrics) ConnRefused(string) {}

// TunnelRefused implements Metrics.
func (NopMetrics) TunnelRefused() {}

// AcceptError implements Metrics.
func (NopMetrics) AcceptError() {}

// Unavailable implements Metrics.
func (NopMetrics) Unavailable(balancer.Reason) {}

// Option configures a Proxy.
type Option func(*Proxy)

// WithClock injects the clock (tests).
func WithClock(now func() time.Time) Option { return func(p *Proxy) { p.now = now } }

// WithMetrics sets the metrics sink.
func WithMetrics(m Metrics) Option { return func(p *Proxy) { p.metrics = m } }

// withConnWaitTimeout and withUpgradeTimeout shorten fixed timeouts (tests).
func withConnWaitTimeout(d time.Duration) Option { return func(p *Proxy) { p.connWait = d } }

func withUpgradeTimeout(d time.Duration) Option { return func(p *Proxy) { p.upgradeWait = d } }

func withPostWait(d time.Duration) Option { return func(p *Proxy) { p.postWait = d } }

// New builds a Proxy over a balancer. The session ledger (table and per-backend counters) is
// created here.
func New(log *zap.Logger, b *balancer.Balancer, s Settings, opts ...Option) *Proxy {
	p := &Proxy{
		log:       log,
		balancer:  b,
		now:       time.Now,
		tunnels:   newTunnelRegistry(),
		metrics:   NopMetrics{},
		stopSweep: make(chan struct{}),
		sweepDone: make(chan struct{}),

		connWait: defaultConnWaitTimeout,
		postWait: defaultPostWait,
	}
	for _, o := range opts {
		o(p)
	}
	p.ledger = newLedger(p.now, b, p.sessionEnded)
	p.table = p.ledger.table
	p.Apply(s)
	p.server = &fasthttp.Server{
		Handler:                       p.Handle,
		Name:                          "sioproxy",
		NoDefaultServerHeader:         true,
		NoDefaultContentType:          true,
		NoDefaultDate:                 true,
		DisableHeaderNamesNormalizing: true, // fields pass as sent; the proxy matches names in any case
		DisablePreParseMultipartForm:  true,
		SecureErrorLogMessage:         true, // fasthttp's errors quote no request bytes (sids)
		// Bodies are read as they arrive, never allocated to a declared length; per request, the
		// head hook sets the body limit and timeout from the live settings (a reload applies).
		StreamRequestBody: true,
		HeaderReceived:    p.headerReceived,
		// The head deadline (proxy.header_timeout) is the connection guard's, from the live
		// settings; the body's and the answer's are set per request (headerReceived). Long-polls
		// and streams are not the client's reads: nothing here cuts them (invariant 3).
		WriteTimeout:      defaultClientWriteTimeout, // answers to heads that could not be read
		IdleTimeout:       120 * time.Second,
		CloseOnShutdown:   true,
		KeepHijackedConns: true, // parked tunnels outlive the hijack handler; tunnels close their sockets
		ReadBufferSize:    8192,
		Logger:            zapPrintf{log},
		ErrorHandler:      p.requestError,
	}
	return p
}

// headerReceived gives each request its body limit and its read and write timeouts, from the live
// settings (the server's own fields are never written while it serves). A body declared over the
// limit is refused at once: fasthttp would wait for its first bytes before the handler runs, so
// its read is made to fail at once, and the error handler answers 413 (oversize marks it).
func (p *Proxy) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	rt := p.rt.Load()
	p.takeOversize(h) // a mark of the previous request on this context is stale
	if h.ContentLength() > rt.MaxBodyBytes {
		if _, loaded := p.oversize.LoadOrStore(h, struct{}{}); !loaded {
			p.oversizeN.Add(1)
		}
		return fasthttp.RequestConfig{ReadTimeout: time.Nanosecond, MaxRequestBodySize: rt.MaxBodyBytes}
	}
	return fasthttp.RequestConfig{ReadTimeout: rt.readTimeout(), WriteTimeout: rt.writeTimeout(), MaxRequestBodySize: rt.MaxBodyBytes}
}

// takeOversize reports (once) whether the request of h was marked by headerReceived as declaring a
// body over the limit. Marks are keyed by the request header, one per pooled request context at
// most, and cleared by the next request on it.
func (p *Proxy) takeOversize(h *fasthttp.RequestHeader) bool {
	if p.oversizeN.Load() == 0 {
		return false
	}
	if _, ok := p.oversize.LoadAndDelete(h); ok {
		p.oversizeN.Add(-1)
		return true
	}
	return false
}

func (rt *rtConfig) readTimeout() time.Duration {
	if rt.ReadTimeout > 0 {
		return rt.ReadTimeout
	}
	return defaultReadTimeout
}

func (rt *rtConfig) writeTimeout() time.Duration {
	if rt.WriteTimeout > 0 {
		return rt.WriteTimeout
	}
	return defaultClientWriteTimeout
}

// headerTimeout is the live proxy.header_timeout (the connection guard reads it per head).
func (p *Proxy) headerTimeout() time.Duration { return p.rt.Load().HeaderTimeout }

// upgradeTimeout bounds the wait for a backend's answer to an upgrade.
func (p *Proxy) upgradeTimeout(rt *rtConfig) time.Duration {
	if p.upgradeWait > 0 {
		return p.upgradeWait
	}
	return rt.DialTimeout + 10*time.Second
}

// Apply swaps in new settings (hot reload). Sessions, tunnels and pooled connections are kept. The
// server's own fields are never written while it serves: what a request needs is read from the
// settings per request.
func (p *Proxy) Apply(s Settings) {
	rt := &rtConfig{Settings: s, classifier: sticky.NewClassifier(s.Paths), trusted: trustedNets(s.TrustedProxies)}
	p.rt.Store(rt)
}

// Table is the session table (for admin and tests).
func (p *Proxy) Table() *sticky.Table { return p.table }

// Tunnels returns the number of live WebSocket tunnels.
func (p *Proxy) Tunnels() int { return p.tunnelCount() }

// Serve accepts connections on ln until Shutdown. It also runs the session table sweeper.
func (p *Proxy) Serve(ln net.Listener) error {
	go p.sweep()
	err := p.server.Serve(guardListener{Listener: ln, headerTimeout: p.headerTimeout})
	if p.stopping.Load() {
		return nil
	}
	return err
}

func (p *Proxy) sweep() {
	defer close(p.sweepDone)
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stopSweep:
			return
		case now := <-t.C:
			p.table.Sweep()
			snap := p.balancer.Snapshot()
			p.upstreams.Range(func(k, v any) bool {
				up := v.(*upstream)
				if snap.ByID(k.(string)) == nil { // the backend left: its pool goes (requests on it finish)
					p.upstreams.CompareAndDelete(k, v)
					up.close()
					return true
				}
				up.sweep(now)
				return true
			})
		}
	}
}

// Shutdown stops accepting, lets in-flight requests and long-polls finish until ctx is done, then
// closes every WebSocket tunnel. It returns ctx.Err() when the deadline cut requests short.
func (p *Proxy) Shutdown(ctx context.Context) error {
	if !p.stopping.CompareAndSwap(false, true) {
		return nil
	}
	err := p.server.ShutdownWithContext(ctx)
	n := p.tunnels.closeAll()
	p.parkOnce.Do(func() {}) // no parker starts from now on
	if pk := p.park.Load(); pk != nil {
		n += pk.closeAll()
	}
	// Tunnels on their way to the parker (it refuses them now) or whose pair of goroutines is
	// ending finish closing before Shutdown returns.
	for p.tunnelCount() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	p.stopParker()
	p.stopWatcher()
	p.log.Info("shutdown", zap.Int("tunnels_closed", n), zap.Error(err))
	close(p.stopSweep)
	<-p.sweepDone
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// sessionEnded runs after the ledger ended a session (its counters are already right).
func (p *Proxy) sessionEnded(sid, backendID string) {
	if p.mirror != nil {
		p.mirror.Close(sid)
	}
	if ce := p.log.Check(zap.DebugLevel, "session end"); ce != nil {
		ce.Write(sidField(sid), zap.String("backend", backendID))
	}
}

// requestError answers a request fasthttp could not read: 413 for a body declared or sent over the
// limit (as engine.io 6 does), else as requestError does.
func (p *Proxy) requestError(ctx *fasthttp.RequestCtx, err error) {
	if p.takeOversize(&ctx.Request.Header) {
		ctx.Error("Request Entity Too Large", fasthttp.StatusRequestEntityTooLarge)
		ctx.SetConnectionClose()
		return
	}
	requestError(ctx, err)
}

// requestError answers a request a server could not read: 400 for a bare-LF head, 413 for a body
// over the limit, 431 for huge headers, 408 for a timeout, else 400.
func requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, errBareLF):
		ctx.Error("Bad Request", fasthttp.StatusBadRequest)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("Request Entity Too Large", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		ctx.Error("Request Header Fields Too Large", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &ne) && ne.Timeout():
		ctx.Error("Request Timeout", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("Bad Request", fasthttp.StatusBadRequest)
	}
}

// zapPrintf adapts zap to fasthttp's Logger.
type zapPrintf struct{ l *zap.Logger }

func (z zapPrintf) Printf(format string, args ...any) { z.l.Sugar().Debugf(format, args...) }
