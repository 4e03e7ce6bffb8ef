package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/configs"
	"sioproxy/proxy"
)

// front is the client side of the process: the listener with its limits, TLS and PROXY protocol,
// and the optional plain listener that redirects to https.
type front struct {
	log      *zap.Logger
	metrics  proxy.ListenerMetrics
	certs    *proxy.CertStore // nil without TLS
	ln       *proxy.Listener  // set by open
	redirect *fasthttp.Server // nil without tls.redirect_listen
	rln      *proxy.Listener  // the redirect listener; nil without one
}

// newFront loads what the client side of cfg needs before anything listens: the certificates (an
// error names the file).
func newFront(cfg *configs.Config, log *zap.Logger, m proxy.ListenerMetrics) (*front, error) {
	f := &front{log: log, metrics: m}
	if cfg.TLS.Enabled() {
		certs, err := proxy.NewCertStore(log, TLSOptions(cfg))
		if err != nil {
			return nil, err
		}
		f.certs = certs
	}
	return f, nil
}

// open wraps the client listener raw as cfg says and opens the redirect listener, if any.
func (f *front) open(ctx context.Context, cfg *configs.Config, raw net.Listener) error {
	o := proxy.ListenerOptions{
		Limits:            ClientLimits(cfg),
		ProxyProtocolFrom: cfg.ProxyProtocolPrefixes(),
		Metrics:           f.metrics,
		Log:               f.log,
	}
	if f.certs != nil {
		o.TLS = f.certs.ServerConfig()
	}
	if a := cfg.TLS.RedirectListen; a != "" && f.certs != nil {
		rln, err := proxy.Listen(ctx, a)
		if err != nil {
			return fmt.Errorf("tls.redirect_listen: %w", err)
		}
		_, port, _ := net.SplitHostPort(raw.Addr().String())
		f.rln = proxy.NewListener(rln, proxy.ListenerOptions{Limits: o.Limits, Metrics: f.metrics, Log: f.log})
		f.redirect = proxy.RedirectServer(port)
		go f.redirect.Serve(f.rln)
		f.log.Info("redirect to https listening", zap.String("addr", rln.Addr().String()))
	}
	f.ln = proxy.NewListener(raw, o)
	lim := o.Limits
	f.log.Info("client limits", zap.Int("max_client_conns", lim.MaxClientConns), zap.Int("max_conns_per_ip", lim.MaxConnsPerIP),
		zap.Int("max_tunnels", lim.MaxTunnels), zap.Int("reserved_fds", lim.ReservedFDs), zap.Uint64("nofile", proxy.NoFile()),
		zap.Bool("tls", f.certs != nil), zap.Strings("proxy_protocol_from", cfg.ProxyProtocolFrom))
	return nil
}

// stageCerts re-reads the certificate files of cfg (changed or not: a reload is how new files on
// disk are taken); nil without TLS. Nothing is served from them until commitCerts.
func (f *front) stageCerts(cfg *configs.Config) (*proxy.CertSet, error) {
	if f.certs == nil {
		return nil, nil
	}
	return f.certs.Prepare(TLSOptions(cfg))
}

func (f *front) commitCerts(g *proxy.CertSet) {
	if g != nil {
		f.certs.Install(g)
	}
}

// setLimits applies reloaded connection limits; connections already accepted stay.
func (f *front) setLimits(cfg *configs.Config) {
	lim := ClientLimits(cfg)
	if f.ln != nil {
		f.ln.SetLimits(lim)
	}
	if f.rln != nil {
		f.rln.SetLimits(lim)
	}
}

func (f *front) close() {
	if f.redirect != nil {
		f.redirect.Shutdown()
	}
}

// ClientLimits derives the client limits of a config, the automatic ones from the descriptor limit.
func ClientLimits(cfg *configs.Config) proxy.Limits {
	p := cfg.Proxy
	return proxy.ResolveLimits(proxy.Limits{
		MaxClientConns: p.MaxClientConns,
		MaxConnsPerIP:  p.MaxConnsPerIP,
		MaxTunnels:     p.MaxTunnels,
		ReservedFDs:    p.ReservedFDs,
	}, proxy.NoFile())
}

// TLSOptions derives the TLS termination options of a config.
func TLSOptions(cfg *configs.Config) proxy.TLSOptions {
	t := cfg.TLS
	o := proxy.TLSOptions{
		MinVersion:     tls.VersionTLS12,
		ClientCAFile:   t.ClientAuth.CAFile,
		ClientOptional: t.ClientAuth.Mode == configs.ClientAuthOptional,
	}
	if t.MinVersion == configs.TLS13 {
		o.MinVersion = tls.VersionTLS13
	}
	for _, c := range t.Certificates {
		o.Certificates = append(o.Certificates, proxy.CertFiles{CertFile: c.CertFile, KeyFile: c.KeyFile})
	}
	return o
}
