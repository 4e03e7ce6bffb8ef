package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"sioproxy/admin"
	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/demo"
	"sioproxy/health"
	"sioproxy/proxy"
	"sioproxy/proxy/mirror"
	"sioproxy/sticky"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole command; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return runCheck(args[1:], stdout, stderr)
		case "demo":
			return runDemo(args[1:], stderr)
		case "version":
			fmt.Fprintln(stdout, "sioproxy", version)
			return 0
		}
	}
	o, err := parseFlags("sioproxy", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "sioproxy", version)
		return 0
	}
	cfg, err := loadConfig(o)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, cfg, o, stderr)
}

// runCheck validates a config file: `sioproxy check -config FILE`.
func runCheck(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags("sioproxy check", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 2
	}
	if o.config == "" {
		fmt.Fprintln(stderr, "sioproxy: check needs -config FILE")
		return 2
	}
	if _, err := loadConfig(o); err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", o.config)
	return 0
}

// runDemo starts three in-process demo backends and the proxy in front of them.
func runDemo(args []string, stderr io.Writer) int {
	o, err := parseFlags("sioproxy demo", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log, err := newLogger(configs.Log{Level: orDefault(o.logLevel, "info"), Format: orDefault(o.logFormat, "console")})
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 2
	}
	urls, stopDemo, err := demo.Start(ctx, 3, log.Named("demo"))
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy: demo:", err)
		return 1
	}
	defer stopDemo()
	o.backends = urls
	o.set["backend"] = true
	if !o.set["log-format"] {
		o.logFormat, o.set["log-format"] = "console", true
	}
	cfg, err := loadConfig(o)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 1
	}
	for i := range cfg.Backends {
		cfg.Backends[i].ID = fmt.Sprintf("demo-%d", i+1)
	}
	log.Info("demo: open http://" + cfg.Listen + "/ in several browser tabs")
	return serve(ctx, cfg, o, stderr)
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// app is a running proxy and what a reload replaces.
type app struct {
	log     *zap.Logger
	opts    *options
	bal     *balancer.Balancer
	proxy   *proxy.Proxy
	set     *health.Sources
	prober  *health.Prober
	mirror  *mirror.Mirror // nil when no mirror is configured
	metrics *admin.Metrics
	front   *front // client listener: limits, TLS, PROXY protocol

	mu        sync.Mutex // guards cfg and the discovery watchers during a reload
	cfg       *configs.Config
	stopWatch context.CancelFunc
	watcher   *health.ConsulWatcher
	drains    map[string]context.CancelFunc
	ctx       context.Context
}

// serve runs the proxy until ctx is cancelled (SIGTERM/SIGINT), reloading on SIGHUP.
func serve(ctx context.Context, cfg *configs.Config, o *options, stderr io.Writer) int {
	log, err := newLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 2
	}
	defer log.Sync()
	a := &app{log: log, opts: o, cfg: cfg, ctx: ctx, drains: map[string]context.CancelFunc{}}
	soft, hard, err := proxy.RaiseNoFile()
	log.Info("descriptor limit", zap.Uint64("soft", soft), zap.Uint64("hard", hard), zap.Error(err))
	if err := a.build(cfg); err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 1
	}
	ln, err := proxy.Listen(ctx, cfg.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 1
	}
	if a.front, err = openFront(ctx, log, cfg, ln, a.metrics); err != nil {
		ln.Close()
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 1
	}
	defer a.front.close()
	var adminSrv *http.Server
	if cfg.Admin.Listen != "" {
		aln, err := proxy.Listen(ctx, cfg.Admin.Listen)
		if err != nil {
			ln.Close()
			fmt.Fprintln(stderr, "sioproxy: admin:", err)
			return 1
		}
		token, err := cfg.Admin.ResolveToken()
		if token == "" {
			token = os.Getenv("SIOPROXY_ADMIN_TOKEN")
		}
		if err != nil {
			ln.Close()
			aln.Close()
			fmt.Fprintln(stderr, "sioproxy:", err)
			return 1
		}
		ao := admin.Options{Balancer: a.bal, Controller: a, Metrics: a.metrics, Token: token, Logger: log}
		if a.mirror != nil {
			ao.Mirror = a.mirror.Handler()
		}
		adminSrv = &http.Server{
			Handler:           admin.Handler(ao),
			ReadHeaderTimeout: 10 * time.Second,
		}
		go adminSrv.Serve(aln)
		log.Info("admin listening", zap.String("addr", aln.Addr().String()))
	}
	a.startDiscovery(cfg)
	if a.prober != nil {
		go a.prober.Run(ctx)
	}
	served := make(chan error, 1)
	go func() { served <- a.proxy.Serve(a.front.ln) }()
	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("version", version),
		zap.Int("backends", len(a.bal.Snapshot().Backends)), zap.String("policy", cfg.Balancer.Policy))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	defer a.stopDiscovery()
	if adminSrv != nil {
		defer adminSrv.Close()
	}
	for {
		select {
		case err := <-served:
			if err != nil {
				log.Error("server stopped", zap.Error(err))
				return 1
			}
			return 0
		case <-hup:
			a.Reload()
		case <-ctx.Done():
			timeout := a.config().Proxy.ShutdownTimeout.Duration()
			log.Info("shutting down", zap.Duration("timeout", timeout))
			sctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := a.proxy.Shutdown(sctx)
			cancel()
			if err != nil {
				log.Warn("shutdown cut in-flight requests short", zap.Error(err))
			}
			return 0
		}
	}
}

func (a *app) config() *configs.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// build wires balancer, backend set, metrics and proxy for the first config.
func (a *app) build(cfg *configs.Config) error {
	pol, err := policyOf(cfg)
	if err != nil {
		return err
	}
	specs := health.StaticSpecs(cfg.Backends, "static")
	settings := settingsOf(cfg)
	opts := append(balancerOptions(cfg), balancer.WithTagger(tagger(cfg.Sticky.TagSIDs)))
	a.bal = balancer.New(pol, opts...)
	a.set = health.NewSources(a.bal)
	a.set.Set("static", specs)
	if p := cfg.Health.Active; p.Enabled {
		pr, err := health.NewProber(health.ProbeOptions{
			Kind: p.Kind, Path: p.Path, Interval: p.Interval.Duration(), Timeout: p.Timeout.Duration(),
			Rise: p.Rise, Fall: p.Fall, Logger: a.log.Named("probe"),
		}, a.set)
		if err != nil {
			return err
		}
		pr.SetTargets(specs)
		a.prober = pr
	}
	a.metrics = admin.NewMetrics(a.bal)
	popts := []proxy.Option{proxy.WithMetrics(a.metrics)}
	if mc := cfg.Mirror; mirrorConfigured(mc) {
		m, err := mirror.FromConfig(mc, a.log, a.metrics.Registry)
		if err != nil {
			return err
		}
		a.mirror = m
		popts = append(popts, proxy.WithMirror(m))
	}
	a.proxy = proxy.New(a.log, a.bal, settings, popts...)
	return nil
}

// mirrorConfigured reports whether a config sets up mirroring (it may start disabled and be
// enabled from the admin API).
func mirrorConfigured(m configs.Mirror) bool {
	return m.Enabled || len(m.Backends) > 0 || m.ConsulService != ""
}

func tagger(on bool) func(string) string {
	if !on {
		return func(string) string { return "" }
	}
	return sticky.TagFor
}

// startDiscovery starts the Consul watch of a config, if it names services.
func (a *app) startDiscovery(cfg *configs.Config) {
	c := cfg.Discovery.Consul
	services := c.Services
	shadow := ""
	if a.mirror != nil && cfg.Mirror.ConsulService != "" {
		shadow = cfg.Mirror.ConsulService
		services = append(slices.Clone(services), shadow)
	}
	if len(services) == 0 {
		return
	}
	token, err := c.ResolveToken()
	if err != nil {
		a.log.Error("consul token file unreadable", zap.String("file", c.TokenFile), zap.Error(err))
	}
	w, err := health.NewConsulWatcher(health.ConsulOptions{
		Address: c.Address, Token: token, Datacenter: c.Datacenter, Services: services, Tag: c.Tag,
		WarningEligible: c.WarningEligible, DeregisterGrace: c.DeregisterGrace.Duration(), WaitTime: c.WaitTime.Duration(),
		Logger: a.log.Named("consul"),
		Publish: func(service string, specs []balancer.Spec) {
			if service == shadow {
				a.mirror.UpdateTargets(specs) // the shadow cluster of a mirrored migration
				return
			}
			a.set.Set("consul:"+service, specs)
		},
	})
	if err != nil {
		a.log.Error("consul discovery not started", zap.Error(err))
		return
	}
	ctx, cancel := context.WithCancel(a.ctx)
	a.watcher, a.stopWatch = w, cancel
	a.metrics.WatchConsul(w.Healthy, w.LastIndexAge)
	go w.Run(ctx)
}

func (a *app) stopDiscovery() {
	if a.stopWatch != nil {
		a.stopWatch()
		a.stopWatch = nil
	}
}

// Reload re-reads the config file; a bad one is refused and the running config kept.
func (a *app) Reload() error {
	err := a.reload()
	if err != nil {
		a.metrics.Reload("error")
		a.log.Error("reload refused, running config kept", zap.Error(err))
		return err
	}
	a.metrics.Reload("ok")
	return nil
}

func (a *app) reload() error {
	if a.opts.config == "" {
		if a.front.certs != nil {
			return a.front.reloadCerts() // flags only: the certificate files are what can change
		}
		return errors.New("no config file to reload (started with flags only)")
	}
	cfg, err := loadConfig(a.opts)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.apply(cfg); err != nil {
		return err
	}
	changed := configs.Diff(a.cfg, cfg)
	if slices.Contains(changed, "discovery") {
		a.stopDiscovery()
		for _, svc := range a.cfg.Discovery.Consul.Services {
			a.set.Set("consul:"+svc, nil)
		}
		a.startDiscovery(cfg)
	}
	a.log.Info("reloaded", zap.Strings("changed", changed))
	a.cfg = cfg
	return nil
}

// apply swaps a validated config in without dropping sessions or tunnels.
func (a *app) apply(cfg *configs.Config) error {
	pol, err := policyOf(cfg)
	if err != nil {
		return err
	}
	specs := health.StaticSpecs(cfg.Backends, "static")
	settings := settingsOf(cfg)
	if err := restartOnly(a.cfg, cfg); err != nil {
		return err
	}
	if (a.mirror != nil) != mirrorConfigured(cfg.Mirror) {
		return fmt.Errorf("adding or removing the mirror section needs a restart; enabled, sample and backends reload")
	}
	if err := a.front.apply(cfg); err != nil {
		return err
	}
	a.bal.SetPolicy(pol)
	a.set.Set("static", specs)
	if a.mirror != nil {
		if cfg.Mirror.ConsulService == "" {
			a.mirror.UpdateTargets(mirror.TargetSpecs(cfg.Mirror.Backends))
		}
		a.mirror.SetSample(cfg.Mirror.Sample)
		a.mirror.Enable(cfg.Mirror.Enabled)
	}
	if a.prober != nil {
		a.prober.SetTargets(specs)
	}
	a.proxy.Apply(settings)
	if lvl, err := zapcore.ParseLevel(cfg.Log.Level); err == nil {
		logLevel.SetLevel(lvl)
	}
	return nil
}

// restartOnly refuses a reload that changes settings a running process cannot take over, naming
// them, so that a reload never reports success for a change it did not apply.
func restartOnly(old, cfg *configs.Config) error {
	var keys []string
	check := func(key string, same bool) {
		if !same {
			keys = append(keys, key)
		}
	}
	check("listen", old.Listen == cfg.Listen)
	check("admin", old.Admin == cfg.Admin)
	check("log.format", old.Log.Format == cfg.Log.Format)
	check("sticky.tag_sids", old.Sticky.TagSIDs == cfg.Sticky.TagSIDs)
	check("balancer.slow_start", old.Balancer.SlowStart == cfg.Balancer.SlowStart)
	check("balancer.admission", old.Balancer.Admission == cfg.Balancer.Admission)
	check("balancer.ejection", old.Balancer.Ejection == cfg.Balancer.Ejection)
	check("health.active", old.Health.Active == cfg.Health.Active)
	check("mirror.queue", old.Mirror.Queue == cfg.Mirror.Queue)
	keys = append(keys, frontRestartOnly(old, cfg)...)
	if len(keys) > 0 {
		return fmt.Errorf("%s cannot change on reload; restart instead (SO_REUSEPORT lets the new process start beside the old one)", strings.Join(keys, ", "))
	}
	return nil
}

// Drain implements admin.Controller.
func (a *app) Drain(id string, deadline time.Duration, rate float64) error {
	if err := a.set.Drain(id, true); err != nil {
		return err
	}
	a.log.Info("backend draining", zap.String("backend", id), zap.Duration("deadline", deadline), zap.Float64("rate", rate))
	a.mu.Lock()
	if cancel := a.drains[id]; cancel != nil {
		cancel()
		delete(a.drains, id)
	}
	if deadline > 0 {
		ctx, cancel := context.WithCancel(a.ctx)
		a.drains[id] = cancel
		go a.closeAfter(ctx, id, deadline, rate)
	}
	a.mu.Unlock()
	return nil
}

// closeAfter closes a drained backend's remaining sessions after the deadline, rate per second,
// with jitter, so that their clients reconnect elsewhere without a storm.
func (a *app) closeAfter(ctx context.Context, id string, deadline time.Duration, rate float64) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(deadline):
	}
	interval := time.Duration(float64(time.Second) / rate)
	closed := 0
	for {
		n := a.proxy.CloseSessions(id, 1)
		closed += n
		if n == 0 {
			a.log.Info("drained backend has no sessions left", zap.String("backend", id), zap.Int("closed", closed))
			return
		}
		jitter := time.Duration(rand.Int64N(int64(interval)/2 + 1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval/2 + jitter + interval/4):
		}
	}
}

// Undrain implements admin.Controller.
func (a *app) Undrain(id string) error {
	if err := a.set.Drain(id, false); err != nil {
		return err
	}
	a.mu.Lock()
	if cancel := a.drains[id]; cancel != nil {
		cancel()
		delete(a.drains, id)
	}
	a.mu.Unlock()
	a.log.Info("backend undrained", zap.String("backend", id))
	return nil
}

// Ready implements admin.Controller: ready when some backend can take a new session.
func (a *app) Ready() (bool, string) {
	for _, be := range a.bal.Snapshot().Backends {
		if be.State == balancer.Active && be.Weight > 0 {
			return true, "" // with Consul down this is the last known set; /metrics says so
		}
	}
	a.mu.Lock()
	w := a.watcher
	a.mu.Unlock()
	if w != nil && !w.Healthy() {
		return false, "no eligible backend, and Consul is unreachable"
	}
	return false, "no eligible backend"
}

// SessionCount implements admin.Controller.
func (a *app) SessionCount(id string) int {
	if id == "" {
		return a.proxy.Table().Len()
	}
	return a.proxy.Table().Count(id)
}

// logLevel is the level of the process's logger (one logger per process).
var logLevel = zap.NewAtomicLevel()

// newLogger builds the zap logger of a config.
// Its level is the package's logLevel, so that a reload can change it.
func newLogger(c configs.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %v", c.Level, err)
	}
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.DisableStacktrace = true
	zc.Sampling = nil
	logLevel.SetLevel(level)
	zc.Level = logLevel
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return zc.Build()
}
