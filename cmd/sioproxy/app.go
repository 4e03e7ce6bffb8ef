package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"sioproxy/admin"
	"sioproxy/configs"
	"sioproxy/daemon"
	"sioproxy/demo"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a bad config, a port in use, a server that failed
	exitUsage  = 2 // a bad flag
)

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
			return exitOK
		}
	}
	o, err := parseFlags("sioproxy", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitUsage
	}
	if o.version {
		fmt.Fprintln(stdout, "sioproxy", version)
		return exitOK
	}
	cfg, err := loadConfig(o)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitFailed
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, cfg, o, stderr, nil)
}

// runCheck validates a config file: `sioproxy check -config FILE`.
func runCheck(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags("sioproxy check", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitUsage
	}
	if o.config == "" {
		fmt.Fprintln(stderr, "sioproxy: check needs -config FILE")
		return exitUsage
	}
	if _, err := loadConfig(o); err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s: ok\n", o.config)
	return exitOK
}

// runDemo starts three in-process demo backends and the proxy in front of them.
func runDemo(args []string, stderr io.Writer) int {
	o, err := parseFlags("sioproxy demo", args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log, _, err := daemon.NewLogger(configs.Log{Level: orDefault(o.logLevel, "info"), Format: orDefault(o.logFormat, "console")})
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitUsage
	}
	urls, stopDemo, err := demo.Start(ctx, 3, log.Named("demo"))
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy: demo:", err)
		return exitFailed
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
		return exitFailed
	}
	for i := range cfg.Backends {
		cfg.Backends[i].ID = fmt.Sprintf("demo-%d", i+1)
	}
	log.Info("demo: open http://"+cfg.Listen+"/ in several browser tabs", zap.String("dashboard", admin.DashboardURL(cfg.Admin.Listen)))
	return serve(ctx, cfg, o, stderr, nil)
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// serve runs the daemon of cfg until ctx is done, reloading on SIGHUP. started, if not nil, gets the
// daemon once it listens (tests).
func serve(ctx context.Context, cfg *configs.Config, o *options, stderr io.Writer, started func(*daemon.Daemon)) int {
	log, level, err := daemon.NewLogger(cfg.Log)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitUsage
	}
	defer log.Sync()
	dopts := daemon.Options{Logger: log, Level: level, Version: version, Signals: true}
	if o.config != "" {
		dopts.Load = func() (*configs.Config, error) { return loadConfig(o) }
	}
	d, err := daemon.New(cfg, dopts)
	if err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitFailed
	}
	if started != nil {
		go func() {
			select {
			case <-d.Listening():
				started(d)
			case <-ctx.Done():
			}
		}()
	}
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "sioproxy:", err)
		return exitFailed
	}
	return exitOK
}
