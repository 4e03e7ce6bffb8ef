package main

import (
	"context"
	"fmt"
	"net"
	"slices"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/configs"
	"sioproxy/proxy"
)

// front is the client side of the process: the listener with its limits, TLS and PROXY protocol,
// and the optional plain listener that redirects to https.
type front struct {
	log      *zap.Logger
	ln       *proxy.Listener
	certs    *proxy.CertStore // nil without TLS
	redirect *fasthttp.Server // nil without tls.redirect_listen
	rln      net.Listener
}

// openFront wraps the client listener raw as the config says and opens the redirect listener.
func openFront(ctx context.Context, log *zap.Logger, cfg *configs.Config, raw net.Listener, m proxy.ListenerMetrics) (*front, error) {
	f := &front{log: log}
	o := proxy.ListenerOptions{
		Limits:            limitsOf(cfg),
		ProxyProtocolFrom: cfg.ProxyProtocolPrefixes(),
		Metrics:           m,
		Log:               log,
	}
	if cfg.TLS.Enabled() {
		certs, err := proxy.NewCertStore(log, tlsOptionsOf(cfg))
		if err != nil {
			return nil, err
		}
		f.certs = certs
		o.TLS = certs.ServerConfig()
	}
	if a := cfg.TLS.RedirectListen; a != "" && f.certs != nil {
		rln, err := proxy.Listen(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("tls.redirect_listen: %w", err)
		}
		_, port, _ := net.SplitHostPort(raw.Addr().String())
		f.rln = proxy.NewListener(rln, proxy.ListenerOptions{Limits: o.Limits, Metrics: m, Log: log})
		f.redirect = proxy.RedirectServer(port)
		go f.redirect.Serve(f.rln)
		log.Info("redirect to https listening", zap.String("addr", rln.Addr().String()))
	}
	f.ln = proxy.NewListener(raw, o)
	lim := o.Limits
	log.Info("client limits", zap.Int("max_client_conns", lim.MaxClientConns), zap.Int("max_conns_per_ip", lim.MaxConnsPerIP),
		zap.Int("max_tunnels", lim.MaxTunnels), zap.Int("reserved_fds", lim.ReservedFDs), zap.Uint64("nofile", proxy.NoFile()),
		zap.Bool("tls", f.certs != nil), zap.Strings("proxy_protocol_from", cfg.ProxyProtocolFrom))
	return f, nil
}

// apply takes a reloaded config: limits, and the certificate files re-read (the files named by
// the config, changed or not). On error nothing changed.
func (f *front) apply(cfg *configs.Config) error {
	if f.certs != nil {
		if err := f.certs.Update(tlsOptionsOf(cfg)); err != nil {
			return err
		}
	}
	f.ln.SetLimits(limitsOf(cfg))
	return nil
}

// reloadCerts re-reads the certificate files (SIGHUP without a config file).
func (f *front) reloadCerts() error {
	if f.certs == nil {
		return nil
	}
	return f.certs.Reload()
}

func (f *front) close() {
	if f.redirect != nil {
		f.redirect.Shutdown()
	}
}

// frontRestartOnly names the listener keys a reload cannot change.
func frontRestartOnly(old, cfg *configs.Config) []string {
	var keys []string
	if !slices.Equal(old.ProxyProtocolFrom, cfg.ProxyProtocolFrom) {
		keys = append(keys, "proxy_protocol_from")
	}
	if old.TLS.Enabled() != cfg.TLS.Enabled() {
		keys = append(keys, "tls (on or off)")
	}
	if old.TLS.RedirectListen != cfg.TLS.RedirectListen {
		keys = append(keys, "tls.redirect_listen")
	}
	return keys
}
