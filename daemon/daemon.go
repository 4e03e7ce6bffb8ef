// Package daemon owns a running sioproxy process: it builds the proxy, the balancer, the backend
// sources, discovery, active probes, the mirror and the admin API from a config; it runs and stops
// discovery watchers; it applies reloads through one plan (a table of how each config key is taken
// by a running process, or that it needs a restart), building everything new before it swaps; and
// it schedules drain deadlines. It is the only package that maps configuration to runtime values.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"

	"sioproxy/admin"
	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/health"
	"sioproxy/proxy"
	"sioproxy/proxy/mirror"
)

// Options are what the command gives a Daemon besides its first config. Only Logger is required.
type Options struct {
	// Load reads the config again for a reload (the file, with the command's flags over it). nil:
	// reloads are refused (the process was started with flags only).
	Load func() (*configs.Config, error)
	// Logger is the process's logger; Level is its level, which a reload of log.level changes.
	Logger *zap.Logger
	Level  zap.AtomicLevel
	// Version is logged at start.
	Version string
	// Clock times drain deadlines (nil: the system clock); Rand jitters them (nil: math/rand/v2).
	Clock health.Clock
	Rand  func() float64
	// Getenv reads the environment ($SIOPROXY_ADMIN_TOKEN); nil: os.Getenv.
	Getenv func(string) string
	// Signals, when true, makes Run reload on SIGHUP.
	Signals bool
}

// Daemon is a running sioproxy: build it with New, run it with Run.
type Daemon struct {
	log     *zap.Logger
	opts    Options
	bal     *balancer.Balancer
	sources *health.Sources
	prober  *health.Prober // nil: active probes off
	proxy   *proxy.Proxy
	mirror  *mirror.Mirror // nil: no mirror section
	metrics *admin.Metrics
	disco   *discovery
	front   *front // client listener: limits, TLS, PROXY protocol
	token   string

	consulMetrics sync.Once
	kubeMetrics   sync.Once

	mu  sync.Mutex // serializes reloads and guards cfg
	cfg *configs.Config

	runCtx    context.Context // set by Run: discovery and drains live under it
	drains    *drainScheduler
	listening chan struct{}
	addr      net.Addr
	adminAddr net.Addr
}

// New builds every part of a daemon from a validated config. It does no I/O but reading the files
// a config names (tokens).
func New(cfg *configs.Config, o Options) (*Daemon, error) {
	if o.Logger == nil {
		return nil, errors.New("daemon: no logger")
	}
	if o.Clock == nil {
		o.Clock = health.SystemClock{}
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	// client-go logs through klog; the few lines it writes outside our watchers' own logger (a
	// context logger) go to the process's logger too, structured, not to stderr as text.
	klog.SetLogger(zapr.NewLogger(o.Logger.Named("client-go")))
	d := &Daemon{log: o.Logger, opts: o, cfg: cfg, listening: make(chan struct{})}
	// A proxy holds a descriptor per client and backend connection: take all the process may have
	// before the limits are derived from it.
	soft, hard, err := proxy.RaiseNoFile()
	d.log.Info("descriptor limit", zap.Uint64("soft", soft), zap.Uint64("hard", hard), zap.Error(err))
	if d.token, err = adminToken(cfg, o.Getenv); err != nil {
		return nil, err
	}
	d.bal = balancer.New(policyOf(cfg), balancerOptions(cfg)...)
	d.sources = health.NewSources(d.bal, nil)
	static := staticSpecs(cfg.Backends, sourceStatic)
	d.sources.Set(sourceStatic, static, cfg.Balancer.RemoveGrace.Duration())
	if po := proberOptions(cfg, d.log); po != nil {
		pr, err := health.NewProber(*po, d.sources)
		if err != nil {
			return nil, err
		}
		pr.SetTargets(static) // as commit does on a reload: both only read it
		d.prober = pr
	}
	d.metrics = admin.NewMetrics(d.bal)
	popts := []proxy.Option{proxy.WithMetrics(d.metrics)}
	if mirrorConfigured(cfg.Mirror) {
		d.mirror = newMirror(cfg.Mirror, d.log)
		if err := d.mirror.Register(d.metrics.Registry); err != nil {
			return nil, err
		}
		popts = append(popts, proxy.WithMirror(d.mirror))
	}
	d.proxy = proxy.New(d.log, d.bal, ProxySettings(cfg), popts...)
	if d.front, err = newFront(cfg, d.log, d.metrics); err != nil {
		return nil, err
	}
	d.disco = &discovery{log: d.log, clock: o.Clock, sources: d.sources, mirror: d.mirror}
	return d, nil
}

// config returns the running config.
func (d *Daemon) config() *configs.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Listening is closed once Run has bound its listeners; Addr and AdminAddr are set then.
func (d *Daemon) Listening() <-chan struct{} { return d.listening }

// Addr is the client listener's address (after Listening).
func (d *Daemon) Addr() net.Addr { return d.addr }

// AdminAddr is the admin listener's address, nil when it is off (after Listening).
func (d *Daemon) AdminAddr() net.Addr { return d.adminAddr }

// Run binds the admin listener, starts discovery, opens the client listener once discovery has
// answered (at most firstDiscoveryWait), starts probes, and serves until ctx is done; then it stops
// accepting, lets in-flight requests and long-polls finish (proxy.shutdown_timeout) and closes the
// tunnels. An error means the daemon could not start or its server failed.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.config()
	var aln net.Listener
	var err error
	if cfg.Admin.Listen != "" {
		// No SO_REUSEPORT here: two processes must not split /metrics and drains, and a stale one
		// on the port must fail the start.
		if aln, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	d.mu.Lock()
	d.runCtx = runCtx
	d.drains = newDrainScheduler(runCtx, d.log, d.opts.Clock, d.opts.Rand, d.proxy.CloseSessions)
	d.mu.Unlock()

	// Discovery first, then the listeners' servers: the admin API never sees a half-built process,
	// and the client listener opens only once discovery has answered (below).
	ws, err := d.disco.build(runCtx, cfg)
	if err != nil {
		if aln != nil {
			aln.Close()
		}
		return err
	}
	d.startDiscovery(runCtx, ws)
	d.awaitDiscovery(ctx, ws)
	failed := func(err error) error {
		stopRun()
		d.disco.stop()
		if aln != nil {
			aln.Close()
		}
		return err
	}
	ln, err := proxy.Listen(ctx, cfg.Listen) // SO_REUSEPORT: a new process can start beside this one
	if err != nil {
		return failed(err)
	}
	if migrates, known := proxy.AcceptQueueMigrates(); known && !migrates {
		d.log.Warn("net.ipv4.tcp_migrate_req is 0: when this process stops beside its replacement, the connections in its accept queue are reset; set it to 1 for restarts that lose no connection (see the README on restarts)")
	}
	if err := d.front.open(ctx, cfg, ln); err != nil {
		ln.Close()
		return failed(err)
	}
	defer d.front.close()
	var probes sync.WaitGroup
	if d.prober != nil {
		probes.Go(func() { d.prober.Run(runCtx) })
	}
	var adminSrv *http.Server
	if aln != nil {
		ao := admin.Options{Balancer: d.bal, Controller: d, Metrics: d.metrics, Token: d.token, Logger: d.log,
			Config: func() ([]byte, error) { return d.config().Redacted().YAML() },
			Stop:   runCtx.Done(), Now: d.opts.Clock.Now}
		if d.mirror != nil {
			ao.Mirror = d.mirror.Handler()
		}
		adminSrv = &http.Server{Handler: admin.Handler(ao), ReadHeaderTimeout: 10 * time.Second}
		go adminSrv.Serve(aln)
		d.adminAddr = aln.Addr()
		d.log.Info("admin listening", zap.String("addr", aln.Addr().String()))
	}
	served := make(chan error, 1)
	go func() { served <- d.proxy.Serve(d.front.ln) }()
	d.addr = ln.Addr()
	close(d.listening)
	d.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("version", d.opts.Version),
		zap.Int("backends", len(d.bal.Snapshot().Backends)), zap.String("policy", cfg.Balancer.Policy))

	stop := func() {
		stopRun() // drains, discovery, probes
		d.drains.wait()
		d.disco.stop()
		probes.Wait()
		if adminSrv != nil {
			adminSrv.Close()
		}
	}
	var hup chan os.Signal
	if d.opts.Signals {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	for {
		select {
		case err := <-served:
			stop()
			if err != nil {
				return fmt.Errorf("server stopped: %w", err)
			}
			return nil
		case <-hup:
			d.Reload()
		case <-ctx.Done():
			timeout := d.config().Proxy.ShutdownTimeout.Duration()
			d.log.Info("shutting down", zap.Duration("timeout", timeout))
			sctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := d.proxy.Shutdown(sctx)
			cancel()
			if err != nil {
				d.log.Warn("shutdown cut in-flight requests short", zap.Error(err))
			}
			stop()
			return nil
		}
	}
}

// firstDiscoveryWait bounds how long a starting process waits for Consul's first answers before it
// opens its client listener anyway (with the backends it knows by then).
const firstDiscoveryWait = 5 * time.Second

// awaitDiscovery waits until the watch set's first Consul queries have completed (answered or
// failed), at most firstDiscoveryWait. With SO_REUSEPORT the kernel hands a process new connections
// as soon as its listener is open: a process started beside a running one must know the backends
// by then, or it answers "Session ID unknown" to the running one's sessions, whose sid tags it
// cannot route yet. (A Kubernetes watch has read its services whole when the set was built.)
func (d *Daemon) awaitDiscovery(ctx context.Context, ws *watchSet) {
	if ws.consul == nil {
		return
	}
	t := time.NewTimer(firstDiscoveryWait)
	defer t.Stop()
	select {
	case <-ws.consul.FirstAnswers():
	case <-ctx.Done():
	case <-t.C:
		d.log.Warn("listening before Consul answered", zap.Duration("waited", firstDiscoveryWait))
	}
}

// startDiscovery runs a watch set and registers the metrics of its providers, once per process.
func (d *Daemon) startDiscovery(ctx context.Context, ws *watchSet) {
	d.disco.swap(ctx, ws)
	if ws.consul != nil {
		d.consulMetrics.Do(func() {
			if err := d.metrics.RegisterDiscovery("consul", d.disco.consulHealthy, d.disco.consulIndexAge); err != nil {
				d.log.Error("consul metrics not registered", zap.Error(err))
			}
		})
	}
	if ws.kube != nil {
		d.kubeMetrics.Do(func() {
			if err := d.metrics.RegisterDiscovery("kubernetes", d.disco.kubeHealthy, nil); err != nil {
				d.log.Error("kubernetes metrics not registered", zap.Error(err))
			}
		})
	}
}

// Reload re-reads the config and applies it; a bad file or a change that needs a restart is refused
// with the error, and the running config stays whole. It implements admin.Controller.
func (d *Daemon) Reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.reloadLocked()
	if err != nil {
		d.metrics.Reload("error")
		d.log.Error("reload refused, running config kept", zap.Error(err))
		return err
	}
	d.metrics.Reload("ok")
	return nil
}

// staged is everything a reload builds before it changes anything.
type staged struct {
	cfg      *configs.Config
	plan     plan
	policy   balancer.Policy
	settings proxy.Settings
	static   []balancer.Spec
	watches  *watchSet      // nil: discovery unchanged
	certs    *proxy.CertSet // the certificate files read again; nil without TLS
}

func (d *Daemon) reloadLocked() error {
	if d.opts.Load == nil {
		if d.front.certs == nil {
			return errors.New("no config file to reload (started with flags only)")
		}
		// Flags only: the certificate files are what can change.
		g, err := d.front.stageCerts(d.cfg)
		if err != nil {
			return err
		}
		d.front.commitCerts(g)
		d.log.Info("reloaded", zap.Strings("applied", []string{TLS.String()}))
		return nil
	}
	cfg, err := d.opts.Load()
	if err != nil {
		return err
	}
	keys := configs.ChangedKeys(d.cfg, cfg)
	if mirrorConfigured(d.cfg.Mirror) != mirrorConfigured(cfg.Mirror) {
		return errors.New("adding or removing the mirror section needs a restart; enabled, sample and backends reload")
	}
	if d.cfg.TLS.Enabled() != cfg.TLS.Enabled() {
		return errors.New("turning TLS on or off (tls.certificates) needs a restart; certificates, min_version and client_auth reload")
	}
	p, err := makePlan(keys)
	if err != nil {
		return err
	}
	st, err := d.stage(cfg, p)
	if err != nil {
		return err
	}
	d.commit(st)
	d.log.Info("reloaded", zap.Strings("changed", keys), zap.Strings("applied", p.applied()))
	return nil
}

// stage builds what the plan needs from cfg; it changes nothing that runs.
func (d *Daemon) stage(cfg *configs.Config, p plan) (*staged, error) {
	st := &staged{cfg: cfg, plan: p, policy: policyOf(cfg), settings: ProxySettings(cfg), static: staticSpecs(cfg.Backends, sourceStatic)}
	certs, err := d.front.stageCerts(cfg) // every reload re-reads the certificate files
	if err != nil {
		return nil, err
	}
	st.certs = certs
	if p.has(Discovery) {
		// Last: nothing after it can fail, so a started Kubernetes watch is always swapped in.
		ws, err := d.disco.build(d.runCtx, cfg)
		if err != nil {
			return nil, err
		}
		st.watches = ws
	}
	return st, nil
}

// commit swaps a staged reload in. Nothing here can fail.
func (d *Daemon) commit(st *staged) {
	cfg, p := st.cfg, st.plan
	if p.has(Policy) {
		d.bal.SetPolicy(st.policy)
	}
	if p.has(Settings) || p.has(Clients) || p.has(Policy) || p.has(Limits) {
		d.proxy.Apply(st.settings)
	}
	if p.has(Limits) {
		d.front.setLimits(cfg)
	}
	d.front.commitCerts(st.certs)
	if p.has(Backends) || p.has(Grace) {
		d.sources.Set(sourceStatic, st.static, cfg.Balancer.RemoveGrace.Duration())
		if d.prober != nil {
			d.prober.SetTargets(st.static)
		}
	}
	if p.has(Mirror) && d.mirror != nil {
		applyMirror(d.mirror, cfg.Mirror)
	}
	if p.has(LogLevel) {
		if lvl, err := zapcore.ParseLevel(cfg.Log.Level); err == nil {
			d.opts.Level.SetLevel(lvl)
		}
	}
	if st.watches != nil {
		if d.runCtx != nil {
			d.startDiscovery(d.runCtx, st.watches)
		} else {
			st.watches.stop() // not running yet: Run builds its own
		}
	}
	d.cfg = cfg
}

// Drain implements admin.Controller: no new sessions for the backend; with deadline > 0, its
// remaining sessions are closed from then on, rate per second.
func (d *Daemon) Drain(id string, deadline time.Duration, rate float64) error {
	if err := checkDrain(deadline, rate); err != nil {
		return err
	}
	if err := d.sources.Drain(id, true); err != nil {
		return err
	}
	d.log.Info("backend draining", zap.String("backend", id), zap.Duration("deadline", deadline), zap.Float64("rate", rate))
	if d.drains == nil {
		return nil
	}
	return d.drains.schedule(id, deadline, rate)
}

// Undrain implements admin.Controller.
func (d *Daemon) Undrain(id string) error {
	if err := d.sources.Drain(id, false); err != nil {
		return err
	}
	if d.drains != nil {
		d.drains.cancel(id)
	}
	d.log.Info("backend undrained", zap.String("backend", id))
	return nil
}

// Ready implements admin.Controller: ready when some backend can take a new session.
func (d *Daemon) Ready() (bool, string) {
	for _, be := range d.bal.Snapshot().Backends {
		if be.State == balancer.Active && be.Weight > 0 {
			return true, "" // with Consul down this is the last known set; /metrics says so
		}
	}
	if !d.disco.consulHealthy() {
		return false, "no eligible backend, and Consul is unreachable"
	}
	if !d.disco.kubeHealthy() {
		return false, "no eligible backend, and the Kubernetes API server is unreachable"
	}
	return false, "no eligible backend"
}

// SessionCount implements admin.Controller.
func (d *Daemon) SessionCount(id string) int {
	if id == "" {
		return d.proxy.Table().Len()
	}
	return d.proxy.Table().Count(id)
}

// NewLogger builds the process's zap logger from the log section; its level can be changed later
// through the returned AtomicLevel (a reload of log.level).
func NewLogger(c configs.Log) (*zap.Logger, zap.AtomicLevel, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("log level %q: %v", c.Level, err)
	}
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.DisableStacktrace = true
	zc.Sampling = nil
	al := zap.NewAtomicLevelAt(level)
	zc.Level = al
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	log, err := zc.Build()
	return log, al, err
}
