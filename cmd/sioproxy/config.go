package main

import (
	"crypto/tls"
	"errors"

	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/proxy"
)

// loadConfig reads the config file (or starts from the defaults) and applies the flags over it.
func loadConfig(o *options) (*configs.Config, error) {
	cfg := configs.Default()
	if o.config != "" {
		var err error
		if cfg, err = configs.Load(o.config); err != nil {
			return nil, err
		}
	}
	if o.set["listen"] {
		cfg.Listen = o.listen
	}
	if o.set["backend"] {
		cfg.Backends = cfg.Backends[:0]
		for _, u := range o.backends {
			cfg.Backends = append(cfg.Backends, configs.Backend{URL: u})
		}
	}
	if o.set["log-level"] {
		cfg.Log.Level = o.logLevel
	}
	if o.set["log-format"] {
		cfg.Log.Format = o.logFormat
	}
	if o.set["admin-listen"] {
		cfg.Admin.Listen = o.admin
	}
	if o.set["consul-addr"] {
		cfg.Discovery.Consul.Address = o.consul
	}
	if o.set["consul-service"] {
		cfg.Discovery.Consul.Services = append([]string(nil), o.services...)
	}
	if o.set["policy"] {
		cfg.Balancer.Policy = o.policy
	}
	if o.set["tls-cert"] != o.set["tls-key"] {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if o.set["tls-cert"] {
		cfg.TLS.Certificates = []configs.Certificate{{CertFile: o.tlsCert, KeyFile: o.tlsKey}}
	}
	if o.set["proxy-protocol-from"] {
		cfg.ProxyProtocolFrom = append([]string(nil), o.ppFrom...)
	}
	if len(cfg.Backends) == 0 && !cfg.Discovery.Consul.Enabled() {
		return nil, errors.New("no backends: give -backend URL (repeatable), -consul-service NAME, or a -config file with backends")
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// policyOf builds the placement policy of a config.
func policyOf(cfg *configs.Config) (balancer.Policy, error) {
	return balancer.PolicyByName(cfg.Balancer.Policy, balancer.PolicyConfig{
		Epsilon:   cfg.Balancer.Epsilon,
		KeySource: cfg.Balancer.HashKey.Source + ":" + cfg.Balancer.HashKey.Name,
	})
}

// settingsOf derives the proxy's reloadable settings from a config.
func settingsOf(cfg *configs.Config) proxy.Settings {
	s := proxy.Settings{
		Paths:              cfg.Sticky.Paths,
		TagSIDs:            cfg.Sticky.TagSIDs,
		SessionTTL:         cfg.Sticky.SessionTTL.Duration(),
		TTLMargin:          cfg.Sticky.TTLMargin.Duration(),
		MaxBodyBytes:       cfg.Proxy.MaxBodyBytes,
		UpstreamTimeout:    cfg.Proxy.UpstreamTimeout.Duration(),
		DialTimeout:        cfg.Proxy.DialTimeout.Duration(),
		TunnelIdleTimeout:  cfg.Proxy.TunnelIdleTimeout.Duration(),
		MaxConnsPerBackend: cfg.Proxy.MaxConnsPerBackend,
		MaxTunnels:         limitsOf(cfg).MaxTunnels,
		AffinityCookie:     cfg.Sticky.Cookie,
	}
	s.TrustedProxies = cfg.Proxy.TrustedPrefixes()
	if cfg.Balancer.Policy == balancer.PolicyHash {
		s.HashKey = proxy.KeyFuncFor(cfg.Balancer.HashKey.Source, cfg.Balancer.HashKey.Name)
	}
	return s
}

// balancerOptions derives the balancer's options from a config.
func balancerOptions(cfg *configs.Config) []balancer.Option {
	b := cfg.Balancer
	return []balancer.Option{
		balancer.WithSlowStart(b.SlowStart.Duration()),
		balancer.WithEjection(b.Ejection.Cooldown.Duration(), b.Ejection.MaxFraction),
		balancer.WithAdmission(b.Admission.Rate, b.Admission.Burst, int64(b.Admission.MaxSessions)),
	}
}

// limitsOf derives the client limits of a config, automatic ones from the descriptor limit.
func limitsOf(cfg *configs.Config) proxy.Limits {
	p := cfg.Proxy
	return proxy.ResolveLimits(proxy.Limits{
		MaxClientConns: p.MaxClientConns,
		MaxConnsPerIP:  p.MaxConnsPerIP,
		MaxTunnels:     p.MaxTunnels,
		ReservedFDs:    p.ReservedFDs,
	}, proxy.NoFile())
}

// tlsOptionsOf derives the TLS termination options of a config.
func tlsOptionsOf(cfg *configs.Config) proxy.TLSOptions {
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
