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
}

// KeyFunc computes the affinity key of a request for the hash policy; ok is false when the request
// has no key.
type KeyFunc func(ctx *fasthttp.RequestCtx, clientIP netip.Addr) (key uint64, ok bool)

// rtConfig is Settings plus what is derived from them.
type rtConfig struct {
	Settings
	classifier *sticky.Classifier
	trusted    trustedNets
	clientGen  uint64 // bumped when a setting of the pooled backend clients changes
}

// pooledClient is a backend's HTTP client and the settings generation it was built with.
type pooledClient struct {
	hc  *fasthttp.HostClient
	gen uint64
}

// Proxy routes requests to backends. Create it with New, serve with Serve, stop with Shutdown.
type Proxy struct {
	log      *zap.Logger
	balancer *balancer.Balancer
	ledger   *ledger // sessions: table entries and backend counters
	table    *sticky.Table
	now      func() time.Time

	rt        atomic.Pointer[rtConfig]
	clients   sync.Map // backend ID -> pooledClient
	tunnels   *tunnelRegistry
	tunnelLog logEvery // the tunnel limit's log line, once a second at most
	// park relays idle tunnels without goroutines (Linux epoll); started on the first tunnel.
	parkOnce sync.Once
	park     *parker
	server   *fasthttp.Server
	metrics  Metrics
	mirror   Mirror // nil: no mirroring

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
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		MaxRequestBodySize:            s.MaxBodyBytes, // per request: headerReceived
		HeaderReceived:                p.headerReceived,
		ReadTimeout:                   60 * time.Second,
		WriteTimeout:                  30 * time.Second,
		IdleTimeout:                   120 * time.Second,
		CloseOnShutdown:               true,
		KeepHijackedConns:             true, // parked tunnels outlive the hijack handler; tunnels close their sockets
		ReadBufferSize:                8192,
		Logger:                        zapPrintf{log},
		ErrorHandler:                  requestError,
	}
	return p
}

// Apply swaps in new settings (hot reload). Sessions and tunnels are kept. When a setting of the
// backend clients changes (upstream_timeout, dial_timeout, max_conns_per_backend), every backend gets
// a new client for its next request; requests on the old ones finish.
func (p *Proxy) Apply(s Settings) {
	rt := &rtConfig{Settings: s, classifier: sticky.NewClassifier(s.Paths), trusted: trustedNets(s.TrustedProxies)}
	if old := p.rt.Load(); old != nil {
		rt.clientGen = old.clientGen
		if old.UpstreamTimeout != s.UpstreamTimeout || old.DialTimeout != s.DialTimeout || old.MaxConnsPerBackend != s.MaxConnsPerBackend {
			rt.clientGen++
		}
	}
	p.rt.Store(rt)
}

// headerReceived sets the body limit of each request from the current settings (the server's own
// field is not written while serving).
func (p *Proxy) headerReceived(*fasthttp.RequestHeader) fasthttp.RequestConfig {
	return fasthttp.RequestConfig{MaxRequestBodySize: p.rt.Load().MaxBodyBytes}
}

// Table is the session table (for admin and tests).
func (p *Proxy) Table() *sticky.Table { return p.table }

// Tunnels returns the number of live WebSocket tunnels.
func (p *Proxy) Tunnels() int { return p.tunnels.len() }

// Serve accepts connections on ln until Shutdown. It also runs the session table sweeper.
func (p *Proxy) Serve(ln net.Listener) error {
	go p.sweep()
	err := p.server.Serve(ln)
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
		case <-t.C:
			p.table.Sweep()
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
	p.stopParker()
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

// client returns the pooled HTTP client of a backend, creating it on first use.
func (p *Proxy) client(be *balancer.Backend, rt *rtConfig) *fasthttp.HostClient {
	if c, ok := p.clients.Load(be.ID); ok {
		pc := c.(pooledClient)
		if pc.hc.Addr == be.Addr && pc.hc.IsTLS == be.TLS && pc.gen == rt.clientGen {
			return pc.hc
		}
	}
	dialTimeout := rt.DialTimeout
	hc := &fasthttp.HostClient{
		Addr:                          be.Addr,
		IsTLS:                         be.TLS,
		Name:                          "sioproxy",
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		MaxConns:                      rt.MaxConnsPerBackend,
		MaxConnWaitTimeout:            5 * time.Second,
		// Below Node's 5 s keep-alive timeout, so a pooled connection is rarely one the backend is
		// closing; RetryIfErr covers the rest.
		MaxIdleConnDuration: 4 * time.Second,
		ReadTimeout:         rt.UpstreamTimeout,
		WriteTimeout:        30 * time.Second,
		RetryIfErr:          retryStale,
		Dial: func(addr string) (net.Conn, error) {
			return fasthttp.DialTimeout(addr, dialTimeout)
		},
	}
	p.clients.Store(be.ID, pooledClient{hc: hc, gen: rt.clientGen}) // replaces an older client; requests on it finish
	return hc
}

// retryStale retries a request once when a pooled connection turned out to be closed before any
// response byte arrived: the backend never saw the request, so even a POST is safe to resend.
// Timeouts are never retried: a long-poll must not be duplicated (engine.io#166).
func retryStale(_ *fasthttp.Request, attempts int, err error) (bool, bool) {
	if attempts > 1 {
		return false, false
	}
	return false, errors.Is(err, fasthttp.ErrConnectionClosed) || isConnReset(err)
}

// requestError answers a request fasthttp could not read: 413 for a body over the limit (as
// engine.io 6 does), 431 for huge headers, 408 for a timeout, else 400.
func requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
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
