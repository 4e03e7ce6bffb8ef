package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"

	"sioproxy/balancer"
)

// Built-in pacing of the Consul watch (not configuration: the process package passes the config's
// values for everything an operator sets).
const (
	defaultMinInterval = 100 * time.Millisecond
	defaultBackoffMin  = 500 * time.Millisecond
	defaultBackoffMax  = 30 * time.Second
)

// ConsulOptions configure a ConsulWatcher.
type ConsulOptions struct {
	Address    string   // host:port or URL of the Consul HTTP API; "" = CONSUL_HTTP_ADDR or 127.0.0.1:8500
	Token      string   // ACL token
	Datacenter string   // "" = the agent's datacenter
	Services   []string // service names; each gets its own watch
	Tag        string   // only instances carrying this tag ("" = all)
	TLS        ConsulTLS

	// WarningEligible keeps instances in the warning state Active (with
	// Service.Weights.Warning); otherwise they drain.
	WarningEligible bool
	// DeregisterGrace keeps a deregistered instance as Draining this long before it is
	// dropped; 0 drops it at once.
	DeregisterGrace time.Duration
	// WaitTime is the longest a blocking query waits (Consul caps it at 10 min); required.
	WaitTime time.Duration
	// MinInterval is the least time between two queries of one service: changes inside
	// it collapse into one result (0: 100 ms).
	MinInterval time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential backoff after errors
	// (0: 500 ms and 30 s).
	BackoffMin, BackoffMax time.Duration

	Logger *zap.Logger
	Clock  Clock          // nil = SystemClock
	Rand   func() float64 // jitter in [0, 1); nil = math/rand/v2
	// Publish receives the full backend set of a service each time it changes (never
	// twice the same set in a row; the first answer is always published, even empty).
	// Called from the watch goroutine of that service (calls for different services may
	// run concurrently); specs are not reused. [Merger.Set] fits.
	Publish func(service string, specs []balancer.Spec)
}

// queryFunc is one health query; the real one calls api.Health().Service.
type queryFunc func(ctx context.Context, service string, index uint64, wait time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error)

// ConsulWatcher follows the health of Consul services with blocking queries and
// publishes their backend sets. When Consul is unreachable it keeps the last known set.
type ConsulWatcher struct {
	opts    ConsulOptions
	log     *zap.Logger
	watches []*watch

	pending atomic.Int32  // watches whose first query has not completed yet
	first   chan struct{} // closed when pending reaches 0
}

// ConsulTLS is TLS to the Consul agent: a CA bundle, an optional client certificate.
type ConsulTLS struct {
	CAFile, CertFile, KeyFile string
	InsecureSkipVerify        bool
}

// NewConsulWatcher validates opts and builds the Consul client (no I/O yet); unreadable TLS files
// are an error here.
func NewConsulWatcher(opts ConsulOptions) (*ConsulWatcher, error) {
	names := opts.Services
	if len(names) == 0 {
		return nil, errors.New("health: consul: no service to watch")
	}
	if opts.Publish == nil {
		return nil, errors.New("health: consul: Publish is nil")
	}
	cfg := api.DefaultConfig()
	if opts.Address != "" {
		cfg.Address = opts.Address
	}
	if opts.Token != "" {
		cfg.Token = opts.Token
	}
	if opts.Datacenter != "" {
		cfg.Datacenter = opts.Datacenter
	}
	if t := opts.TLS; t != (ConsulTLS{}) {
		cfg.TLSConfig = api.TLSConfig{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
		if strings.HasPrefix(cfg.Address, "http://") {
			cfg.Address = strings.TrimPrefix(cfg.Address, "http://")
		}
		if !strings.Contains(cfg.Address, "://") {
			cfg.Scheme = "https"
		}
		if _, err := api.SetupTLSConfig(&cfg.TLSConfig); err != nil {
			return nil, fmt.Errorf("health: consul: tls: %w", err)
		}
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	tag := opts.Tag
	q := func(ctx context.Context, service string, index uint64, wait time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error) {
		qo := &api.QueryOptions{WaitIndex: index, WaitTime: wait}
		return client.Health().Service(service, tag, false, qo.WithContext(ctx))
	}
	return newConsulWatcher(opts, names, q)
}

// newConsulWatcher is NewConsulWatcher with the query injected (tests).
func newConsulWatcher(opts ConsulOptions, names []string, q queryFunc) (*ConsulWatcher, error) {
	if opts.WaitTime <= 0 {
		return nil, errors.New("health: consul: WaitTime must be positive")
	}
	opts.DeregisterGrace = max(opts.DeregisterGrace, 0)
	orDefault(&opts.MinInterval, defaultMinInterval)
	orDefault(&opts.BackoffMin, defaultBackoffMin)
	orDefault(&opts.BackoffMax, defaultBackoffMax)
	opts.BackoffMax = max(opts.BackoffMax, opts.BackoffMin)
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Rand == nil {
		opts.Rand = defaultRand
	}
	w := &ConsulWatcher{opts: opts, log: opts.Logger.Named("consul")}
	seen := make(map[string]bool)
	now := opts.Clock.Now().UnixNano()
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		wt := &watch{w: w, name: n, query: q, tr: newTracker(opts.DeregisterGrace),
			log: w.log.With(zap.String("service", n))}
		wt.lastOK.Store(now)
		w.watches = append(w.watches, wt)
	}
	w.first = make(chan struct{})
	w.pending.Store(int32(len(w.watches)))
	if len(w.watches) == 0 {
		close(w.first)
	}
	return w, nil
}

// FirstAnswers is closed once the first query of every service has completed: with an answer,
// already published, or with an error (Consul unreachable: nothing to wait for). A process that
// serves the sessions of other processes (the sid tags of a replica restarted beside the old one)
// waits for it before it accepts clients, or it would answer "Session ID unknown" for sessions whose
// backend it has not learnt yet.
func (w *ConsulWatcher) FirstAnswers() <-chan struct{} { return w.first }

// firstDone counts the first completed query of a watch.
func (wt *watch) firstDone() {
	if wt.answeredOnce {
		return
	}
	wt.answeredOnce = true
	if wt.w.pending.Add(-1) == 0 {
		close(wt.w.first)
	}
}

// Run watches every service, one goroutine each, until ctx is done.
func (w *ConsulWatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, wt := range w.watches {
		wg.Go(func() { wt.run(ctx) })
	}
	wg.Wait()
}

// Healthy reports whether the last query of every service succeeded.
func (w *ConsulWatcher) Healthy() bool {
	for _, wt := range w.watches {
		if wt.failing.Load() {
			return false
		}
	}
	return true
}

// LastIndexAge is the time since the oldest of the services last got an answer from
// Consul (since NewConsulWatcher when none came yet). With blocking queries it stays
// below WaitTime plus a little while Consul is reachable.
func (w *ConsulWatcher) LastIndexAge() time.Duration {
	now := w.opts.Clock.Now().UnixNano()
	var age time.Duration
	for _, wt := range w.watches {
		age = max(age, time.Duration(now-wt.lastOK.Load()))
	}
	return age
}

// watch is the state of one service; its run goroutine owns everything but the atomics.
type watch struct {
	w     *ConsulWatcher
	name  string
	query queryFunc
	tr    *tracker
	log   *zap.Logger

	index        uint64
	failures     int
	published    bool
	answeredOnce bool // the first query completed (FirstAnswers)
	last         []balancer.Spec
	downSince    time.Time

	failing atomic.Bool
	lastOK  atomic.Int64 // unix nanos of the last answer
}

func (wt *watch) run(ctx context.Context) {
	o := &wt.w.opts
	var next time.Time // earliest start of the next query
	for ctx.Err() == nil {
		now := o.Clock.Now()
		if wt.published {
			wt.publish(wt.tr.specs(now)) // drops expired deregistered instances
		}
		if d := next.Sub(now); d > 0 {
			if dl, ok := wt.tr.next(); ok && dl.Sub(now) < d {
				d = max(dl.Sub(now), time.Millisecond)
			}
			select {
			case <-ctx.Done():
				return
			case <-o.Clock.After(d):
			}
			continue
		}
		wait := o.WaitTime
		if dl, ok := wt.tr.next(); ok && dl.Sub(now) < wait {
			wait = max(dl.Sub(now), time.Millisecond)
		}
		entries, meta, err := wt.query(ctx, wt.name, wt.index, wait)
		if ctx.Err() != nil {
			return
		}
		if err == nil && meta == nil {
			err = errors.New("no query metadata")
		}
		if err != nil {
			// Consul may come back restarted with a lower index; a query whose index is
			// above Consul's would block for the whole WaitTime. Start over with a
			// fresh (non-blocking) read.
			wt.index = 0
			wt.failures++
			next = o.Clock.Now().Add(backoff(wt.failures, o.BackoffMin, o.BackoffMax, o.Rand()))
			wt.fail(err, now)
			wt.firstDone()
			continue
		}
		wt.failures = 0
		next = now.Add(o.MinInterval)
		wt.ok()
		wt.index = nextIndex(wt.index, meta.LastIndex)
		wt.tr.apply(SpecsFromEntries(entries, *o), o.Clock.Now())
		wt.publish(wt.tr.specs(o.Clock.Now()))
		wt.firstDone()
	}
}

// nextIndex is the WaitIndex after an answer with index got, following Consul's advice:
// an index that went backwards resets to 0 (a fresh, non-blocking read); an index of 0
// becomes 1 so that the next query blocks instead of spinning.
func nextIndex(prev, got uint64) uint64 {
	switch {
	case got == 0:
		return 1
	case got < prev:
		return 0
	default:
		return got
	}
}

// fail records a failed query; it logs only the transition to unhealthy.
func (wt *watch) fail(err error, now time.Time) {
	if wt.failing.Swap(true) {
		wt.log.Debug("consul query failed again", zap.Int("failures", wt.failures), zap.Error(err))
		return
	}
	wt.downSince = now
	wt.log.Warn("consul unreachable, keeping the last known backends",
		zap.Int("backends", len(wt.last)), zap.Error(err))
}

// ok records a successful answer; it logs only the transition back to healthy.
func (wt *watch) ok() {
	now := wt.w.opts.Clock.Now()
	wt.lastOK.Store(now.UnixNano())
	if wt.failing.Swap(false) {
		wt.log.Info("consul reachable again", zap.Duration("down_for", now.Sub(wt.downSince)))
	}
}

// publish hands specs to Publish unless they equal the last published set.
func (wt *watch) publish(specs []balancer.Spec) {
	if wt.published && slices.Equal(specs, wt.last) {
		return
	}
	wt.logChanges(specs)
	wt.published = true
	wt.last = specs
	wt.w.opts.Publish(wt.name, slices.Clone(specs))
}

// logChanges logs each backend that appeared, changed state or left.
func (wt *watch) logChanges(specs []balancer.Spec) {
	prev := make(map[string]balancer.Spec, len(wt.last))
	for _, s := range wt.last {
		prev[s.ID] = s
	}
	active := 0
	for _, s := range specs {
		if s.State == balancer.Active {
			active++
		}
		p, ok := prev[s.ID]
		delete(prev, s.ID)
		switch {
		case !ok:
			wt.log.Info("backend added", zap.String("id", s.ID), zap.String("addr", s.Addr),
				zap.Stringer("state", s.State), zap.Int("weight", s.Weight))
		case p != s:
			wt.log.Info("backend changed", zap.String("id", s.ID), zap.String("addr", s.Addr),
				zap.Stringer("from", p.State), zap.Stringer("state", s.State), zap.Int("weight", s.Weight))
		}
	}
	for id := range prev {
		wt.log.Info("backend removed", zap.String("id", id))
	}
	wt.log.Debug("consul backends published", zap.Int("total", len(specs)), zap.Int("active", active))
}
