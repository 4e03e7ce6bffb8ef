package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/demo"
	"sioproxy/proxy"
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
	log   *zap.Logger
	opts  *options
	bal   *balancer.Balancer
	proxy *proxy.Proxy
	cfg   *configs.Config
}

// serve runs the proxy until ctx is cancelled (SIGTERM/SIGINT), reloading on SIGHUP.
func serve(ctx context.Context, cfg *configs.Config, o *options, stderr io.Writer) int {
	log, err := newLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 2
	}
	defer log.Sync()
	a := &app{log: log, opts: o, cfg: cfg}
	if err := a.build(cfg); err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 1
	}
	ln, err := proxy.Listen(ctx, cfg.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- a.proxy.Serve(ln) }()
	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("version", version),
		zap.Int("backends", len(a.bal.Snapshot().Backends)), zap.String("policy", cfg.Balancer.Policy))

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case err := <-served:
			if err != nil {
				log.Error("server stopped", zap.Error(err))
				return 1
			}
			return 0
		case <-hup:
			a.reload()
		case <-ctx.Done():
			log.Info("shutting down", zap.Duration("timeout", cfg.Proxy.ShutdownTimeout.Duration()))
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Proxy.ShutdownTimeout.Duration())
			err := a.proxy.Shutdown(sctx)
			cancel()
			if err != nil {
				log.Warn("shutdown cut in-flight requests short", zap.Error(err))
			}
			return 0
		}
	}
}

// build wires balancer and proxy for a first config.
func (a *app) build(cfg *configs.Config) error {
	pol, err := policyOf(cfg)
	if err != nil {
		return err
	}
	specs, err := staticSpecs(cfg.Backends)
	if err != nil {
		return err
	}
	settings, err := settingsOf(cfg)
	if err != nil {
		return err
	}
	opts := append(balancerOptions(cfg), balancer.WithTagger(tagger(cfg.Sticky.TagSIDs)))
	a.bal = balancer.New(pol, opts...)
	a.bal.Update(specs)
	a.proxy = proxy.New(a.log, a.bal, settings)
	return nil
}

func tagger(on bool) func(string) string {
	if !on {
		return func(string) string { return "" }
	}
	return sticky.TagFor
}

// reload re-reads the config file; a bad one is refused and the running config kept.
func (a *app) reload() {
	if a.opts.config == "" {
		a.log.Info("reload: no config file, nothing to reload")
		return
	}
	cfg, err := loadConfig(a.opts)
	if err == nil {
		err = a.apply(cfg)
	}
	if err != nil {
		a.log.Error("reload refused, running config kept", zap.Error(err))
		return
	}
	a.log.Info("reloaded", zap.Strings("changed", configs.Diff(a.cfg, cfg)))
	a.cfg = cfg
}

// apply swaps a validated config in without dropping sessions or tunnels.
func (a *app) apply(cfg *configs.Config) error {
	pol, err := policyOf(cfg)
	if err != nil {
		return err
	}
	specs, err := staticSpecs(cfg.Backends)
	if err != nil {
		return err
	}
	settings, err := settingsOf(cfg)
	if err != nil {
		return err
	}
	if cfg.Listen != a.cfg.Listen {
		return fmt.Errorf("listen cannot change on reload (%s -> %s); restart instead", a.cfg.Listen, cfg.Listen)
	}
	a.bal.SetPolicy(pol)
	a.bal.Update(specs)
	a.proxy.Apply(settings)
	return nil
}

// newLogger builds the zap logger of a config.
func newLogger(c configs.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %v", c.Level, err)
	}
	zc := zap.NewProductionConfig()
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	}
	zc.Sampling = nil
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return zc.Build()
}

var _ = time.Second
