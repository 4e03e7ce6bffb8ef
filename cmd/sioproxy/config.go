package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

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
	if o.set["policy"] {
		cfg.Balancer.Policy = o.policy
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Backends) == 0 && len(cfg.Discovery.Consul.Services) == 0 {
		return nil, errors.New("no backends: give -backend URL (repeatable) or a -config file with backends")
	}
	return cfg, nil
}

// staticSpecs turns the configured backends into balancer specs.
func staticSpecs(bs []configs.Backend) ([]balancer.Spec, error) {
	specs := make([]balancer.Spec, 0, len(bs))
	for _, b := range bs {
		addr, tls, err := backendAddr(b.URL)
		if err != nil {
			return nil, err
		}
		s := balancer.Spec{ID: b.ID, Addr: addr, TLS: tls, Weight: 1, State: balancer.Active, Source: "static"}
		if s.ID == "" {
			s.ID = b.URL
		}
		if b.Weight != nil {
			s.Weight = *b.Weight
		}
		if b.Drain {
			s.State = balancer.Draining
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// backendAddr parses a backend URL into host:port and whether it uses TLS.
func backendAddr(raw string) (string, bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("backend %q: %v", raw, err)
	}
	var tls bool
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
	case "https", "wss":
		tls = true
	default:
		return "", false, fmt.Errorf("backend %q: scheme must be http, https, ws or wss", raw)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", false, fmt.Errorf("backend %q: want host:port (%v)", raw, err)
	}
	return u.Host, tls, nil
}

// policyOf builds the placement policy of a config.
func policyOf(cfg *configs.Config) (balancer.Policy, error) {
	return balancer.PolicyByName(cfg.Balancer.Policy, balancer.PolicyConfig{
		Epsilon:   cfg.Balancer.Epsilon,
		KeySource: cfg.Balancer.HashKey.Source + ":" + cfg.Balancer.HashKey.Name,
	})
}

// settingsOf derives the proxy's reloadable settings from a config.
func settingsOf(cfg *configs.Config) (proxy.Settings, error) {
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
		AffinityCookie:     cfg.Sticky.Cookie,
	}
	for _, t := range cfg.Proxy.TrustedProxies {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			a, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return s, fmt.Errorf("trusted_proxies: %q is neither a CIDR nor an IP", t)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		s.TrustedProxies = append(s.TrustedProxies, p)
	}
	if cfg.Balancer.Policy == balancer.PolicyHash {
		s.HashKey = proxy.KeyFuncFor(cfg.Balancer.HashKey.Source, cfg.Balancer.HashKey.Name)
	}
	return s, nil
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
