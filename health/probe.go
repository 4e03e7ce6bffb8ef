package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// Probe kinds.
const (
	ProbeEngineIO = "engineio" // Engine.IO polling handshake (v3 or v4 answer), then a close packet
	ProbeHTTP     = "http"     // GET, any 2xx
)

// StatusSetter receives health transitions of backends (Traefik style); the lead wires
// it to the balancer, where down means ejected or draining.
type StatusSetter interface {
	SetStatus(id string, up bool)
}

// ProbeOptions configure a Prober. Kind, Path, Interval, Timeout, Rise and Fall are required (the
// config gives them).
type ProbeOptions struct {
	Kind     string        // ProbeEngineIO or ProbeHTTP
	Path     string        // an Engine.IO path such as "/socket.io/" for engineio; may carry a query
	Interval time.Duration // between two probes of one backend
	Timeout  time.Duration // for one request
	Rise     int           // consecutive successes that bring a down backend up
	Fall     int           // consecutive failures that take an up backend down

	TLSConfig *tls.Config // for backends with Spec.TLS; nil = system roots, verified
	Logger    *zap.Logger
	Clock     Clock          // nil = SystemClock
	Rand      func() float64 // staggers the first probe of each backend over Interval; nil = math/rand/v2
}

// Prober actively checks backends (static ones; Consul runs its own checks) and reports
// transitions to a StatusSetter. Backends start up. Safe for concurrent use.
type Prober struct {
	opts   ProbeOptions
	setter StatusSetter
	log    *zap.Logger
	client *fasthttp.Client

	mu      sync.Mutex
	ctx     context.Context // set by Run
	stopped bool
	targets map[string]*probeTarget
	wg      sync.WaitGroup
}

// probeTarget is one probed backend; its goroutine owns the threshold.
type probeTarget struct {
	spec   balancer.Spec
	cancel context.CancelFunc
	up     atomic.Bool
}

// NewProber validates opts; setter gets every transition.
func NewProber(opts ProbeOptions, setter StatusSetter) (*Prober, error) {
	if setter == nil {
		return nil, errors.New("health: probe: nil StatusSetter")
	}
	switch opts.Kind {
	case ProbeEngineIO, ProbeHTTP:
	default:
		return nil, fmt.Errorf("health: probe: unknown kind %q (want %q or %q)", opts.Kind, ProbeEngineIO, ProbeHTTP)
	}
	if !strings.HasPrefix(opts.Path, "/") {
		return nil, fmt.Errorf("health: probe: path %q must start with /", opts.Path)
	}
	if opts.Interval <= 0 || opts.Timeout <= 0 || opts.Rise < 1 || opts.Fall < 1 {
		return nil, fmt.Errorf("health: probe: interval and timeout must be positive, rise and fall at least 1 (got %s, %s, %d, %d)",
			opts.Interval, opts.Timeout, opts.Rise, opts.Fall)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Rand == nil {
		opts.Rand = defaultRand
	}
	return &Prober{
		opts:   opts,
		setter: setter,
		log:    opts.Logger.Named("probe"),
		client: &fasthttp.Client{
			Name:                "sioproxy-probe",
			TLSConfig:           opts.TLSConfig,
			ReadTimeout:         opts.Timeout,
			WriteTimeout:        opts.Timeout,
			MaxConnsPerHost:     4,
			MaxIdleConnDuration: opts.Interval + opts.Timeout,
			MaxResponseBodySize: 64 << 10,
		},
		targets: make(map[string]*probeTarget),
	}, nil
}

// SetTargets replaces the probed backends. A backend whose ID, Addr and TLS stay the same
// keeps its state and schedule; new ones start up; removed ones stop without a
// SetStatus call.
func (p *Prober) SetTargets(specs []balancer.Spec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make(map[string]*probeTarget, len(specs))
	for _, s := range specs {
		if old, ok := p.targets[s.ID]; ok && old.spec.Addr == s.Addr && old.spec.TLS == s.TLS {
			next[s.ID] = old
			delete(p.targets, s.ID)
			continue
		}
		if _, dup := next[s.ID]; dup {
			continue
		}
		t := &probeTarget{spec: s}
		t.up.Store(true)
		next[s.ID] = t
		p.startLocked(t)
	}
	for _, old := range p.targets {
		if old.cancel != nil {
			old.cancel()
		}
	}
	p.targets = next
}

// Status reports whether the backend is up, and whether it is probed at all.
func (p *Prober) Status(id string) (up, known bool) {
	p.mu.Lock()
	t, ok := p.targets[id]
	p.mu.Unlock()
	if !ok {
		return false, false
	}
	return t.up.Load(), true
}

// Run probes the targets until ctx is done, then waits for the probe goroutines.
func (p *Prober) Run(ctx context.Context) {
	p.mu.Lock()
	p.ctx = ctx
	for _, t := range p.targets {
		p.startLocked(t)
	}
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.wg.Wait()
}

// startLocked starts the goroutine of t if Run is running and t has none. p.mu held.
func (p *Prober) startLocked(t *probeTarget) {
	if p.ctx == nil || p.stopped || t.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(p.ctx)
	t.cancel = cancel
	p.wg.Go(func() { p.loop(ctx, t) })
}

func (p *Prober) loop(ctx context.Context, t *probeTarget) {
	log := p.log.With(zap.String("id", t.spec.ID), zap.String("addr", t.spec.Addr))
	th := newThreshold(p.opts.Rise, p.opts.Fall)
	delay := time.Duration(float64(p.opts.Interval) * p.opts.Rand())
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.opts.Clock.After(delay):
		}
		delay = p.opts.Interval
		err := p.probe(t.spec)
		if ctx.Err() != nil {
			return // removed or stopping while probing: report nothing
		}
		if !th.observe(err == nil) {
			if err != nil {
				log.Debug("probe failed", zap.Error(err))
			}
			continue
		}
		t.up.Store(th.up)
		if th.up {
			log.Info("backend up", zap.Int("rise", p.opts.Rise))
		} else {
			log.Warn("backend down", zap.Int("fall", p.opts.Fall), zap.Error(err))
		}
		p.setter.SetStatus(t.spec.ID, th.up)
	}
}

// probe runs one check of s.
func (p *Prober) probe(s balancer.Spec) error {
	if p.opts.Kind == ProbeHTTP {
		return p.probeHTTP(s)
	}
	return p.probeEngineIO(s)
}

// uri builds the probe URL of s with extra query parameters.
func (p *Prober) uri(s balancer.Spec, query string) string {
	scheme := "http://"
	if s.TLS {
		scheme = "https://"
	}
	sep := "?"
	if strings.Contains(p.opts.Path, "?") {
		sep = "&"
	}
	if query == "" {
		sep = ""
	}
	return scheme + s.Addr + p.opts.Path + sep + query
}

func (p *Prober) probeHTTP(s balancer.Spec) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(p.uri(s, ""))
	req.Header.SetMethod(fasthttp.MethodGet)
	resp.SkipBody = true
	if err := p.client.DoTimeout(req, resp, p.opts.Timeout); err != nil {
		return err
	}
	if code := resp.StatusCode(); code < 200 || code > 299 {
		return fmt.Errorf("status %d", code)
	}
	return nil
}

// probeEngineIO opens an Engine.IO polling session and closes it at once (a close packet POSTed
// with its sid), so that probes leave no session behind. The open packet may come in any framing
// (v4, v3 text or binary, as socket.io 2 answers), and the close packet "1:1" reads as a close in
// both revisions.
func (p *Prober) probeEngineIO(s balancer.Spec) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(p.uri(s, "EIO=4&transport=polling"))
	req.Header.SetMethod(fasthttp.MethodGet)
	if err := p.client.DoTimeout(req, resp, p.opts.Timeout); err != nil {
		return err
	}
	if code := resp.StatusCode(); code != fasthttp.StatusOK {
		return fmt.Errorf("handshake status %d: %q", code, truncate(resp.Body(), 80))
	}
	body, err := resp.BodyUncompressed()
	if err != nil {
		return fmt.Errorf("handshake body: %w", err)
	}
	hs, err := sticky.ParseHandshake(body)
	if err != nil {
		return fmt.Errorf("not an Engine.IO open packet (%v): %q", err, truncate(body, 40))
	}
	sid := string(hs.SID)
	req.Reset()
	resp.Reset()
	req.SetRequestURI(p.uri(s, "EIO=4&transport=polling&sid="+url.QueryEscape(sid)))
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("text/plain;charset=UTF-8")
	req.SetBodyString("1:1")
	if err := p.client.DoTimeout(req, resp, p.opts.Timeout); err != nil || resp.StatusCode() != fasthttp.StatusOK {
		// The backend answered the handshake: it is up. The session expires on its own.
		p.log.Debug("probe session close failed", zap.String("addr", s.Addr),
			zap.Int("status", resp.StatusCode()), zap.Error(err))
	}
	return nil
}
