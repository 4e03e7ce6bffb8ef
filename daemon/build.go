package daemon

import (
	"fmt"

	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/health"
	"sioproxy/proxy"
	"sioproxy/proxy/mirror"
	"sioproxy/sticky"
)

// This file is the one place where config values become runtime values: every package under the
// daemon takes explicit values and knows nothing of configs.

// Source names of the backend sets the daemon merges (health.Sources).
const (
	sourceStatic       = "static"
	sourceMirror       = "mirror"
	sourceConsulPrefix = "consul:"
	sourceKubePrefix   = "kubernetes:"
)

// policyOf builds the placement policy a config names (validated by configs).
func policyOf(cfg *configs.Config) balancer.Policy {
	switch cfg.Balancer.Policy {
	case configs.PolicyRoundRobin:
		return balancer.NewRoundRobin()
	case configs.PolicyLeastSessions:
		return balancer.NewLeastSessions()
	case configs.PolicyHash:
		return balancer.NewHash(cfg.Balancer.Epsilon)
	default:
		return balancer.NewP2C()
	}
}

// balancerOptions are the balancer's construction-time options (restart-only keys).
func balancerOptions(cfg *configs.Config) []balancer.Option {
	b := cfg.Balancer
	tagger := func(string) string { return "" }
	if cfg.Sticky.TagSIDs {
		tagger = sticky.TagFor
	}
	opts := []balancer.Option{
		balancer.WithTagger(tagger),
		balancer.WithSlowStart(b.SlowStart.Duration()),
		balancer.WithEjection(b.Ejection.Cooldown.Duration(), b.Ejection.MaxFraction),
		balancer.WithAdmission(b.Admission.Rate, b.Admission.Burst, int64(b.Admission.MaxSessions)),
	}
	if k := cfg.Discovery.Kubernetes; k.PreferZone {
		opts = append(opts, balancer.WithZonePreference(k.Zone))
	}
	return opts
}

// ProxySettings derives the proxy's reloadable settings from a config (the daemon's mapping; tests
// that run a proxy in process use it too).
func ProxySettings(cfg *configs.Config) proxy.Settings {
	s := proxy.Settings{
		Paths:              cfg.Sticky.Paths,
		TagSIDs:            cfg.Sticky.TagSIDs,
		SessionTTL:         cfg.Sticky.SessionTTL.Duration(),
		TTLMargin:          cfg.Sticky.TTLMargin.Duration(),
		MaxBodyBytes:       cfg.Proxy.MaxBodyBytes,
		HeaderTimeout:      cfg.Proxy.HeaderTimeout.Duration(),
		ReadTimeout:        cfg.Proxy.ReadTimeout.Duration(),
		WriteTimeout:       cfg.Proxy.WriteTimeout.Duration(),
		UpstreamTimeout:    cfg.Proxy.UpstreamTimeout.Duration(),
		DialTimeout:        cfg.Proxy.DialTimeout.Duration(),
		TunnelIdleTimeout:  cfg.Proxy.TunnelIdleTimeout.Duration(),
		MaxConnsPerBackend: cfg.Proxy.MaxConnsPerBackend,
		MaxTunnels:         ClientLimits(cfg).MaxTunnels,
		AffinityCookie:     cfg.Sticky.Cookie,
		TrustedProxies:     cfg.Proxy.TrustedPrefixes(),
	}
	if cfg.Balancer.Policy == configs.PolicyHash {
		s.HashKey = proxy.KeyFuncFor(cfg.Balancer.HashKey.Source, cfg.Balancer.HashKey.Name)
	}
	return s
}

// staticSpecs turns configured (validated, normalized) backends into balancer specs of a source.
func staticSpecs(bs []configs.Backend, source string) []balancer.Spec {
	specs := make([]balancer.Spec, 0, len(bs))
	for _, b := range bs {
		addr, tls := b.Addr()
		s := balancer.Spec{ID: b.EffectiveID(), Addr: addr, TLS: tls, Weight: b.EffectiveWeight(), State: balancer.Active, Source: source,
			TLSCAFile: b.TLS.CAFile, TLSServerName: b.TLS.ServerName}
		if b.Drain {
			s.State = balancer.Draining
		}
		specs = append(specs, s)
	}
	return specs
}

// proberOptions are the active probes of a config (nil when they are off).
func proberOptions(cfg *configs.Config, log *zap.Logger) *health.ProbeOptions {
	p := cfg.Health.Active
	if !p.Enabled {
		return nil
	}
	return &health.ProbeOptions{
		Kind: p.Kind, Path: p.Path, Interval: p.Interval.Duration(), Timeout: p.Timeout.Duration(),
		Rise: p.Rise, Fall: p.Fall, Logger: log.Named("probe"),
	}
}

// consulOptions are the Consul watch of a config; services includes the mirror's shadow service.
// The token file is read here, so an unreadable one fails the start or the reload.
func consulOptions(cfg *configs.Config, services []string, log *zap.Logger) (health.ConsulOptions, error) {
	c := cfg.Discovery.Consul
	token, err := c.ResolveToken()
	if err != nil {
		return health.ConsulOptions{}, fmt.Errorf("discovery.consul.token_file: %w", err)
	}
	return health.ConsulOptions{
		Address: c.Address, Token: token, Datacenter: c.Datacenter, Services: services, Tag: c.Tag,
		TLS: health.ConsulTLS{
			CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		},
		WarningEligible: c.WarningEligible,
		DeregisterGrace: c.DeregisterGrace.Duration(),
		WaitTime:        c.WaitTime.Duration(),
		Logger:          log.Named("consul"),
	}, nil
}

// kubernetesOptions are the Kubernetes watch of a config (Publish is set by the caller).
func kubernetesOptions(cfg *configs.Config, log *zap.Logger, clock health.Clock) health.KubernetesOptions {
	k := cfg.Discovery.Kubernetes
	return health.KubernetesOptions{
		Kubeconfig: k.Kubeconfig, Services: k.Services, PortName: k.PortName, LabelSelector: k.LabelSelector,
		Zone: k.Zone, Grace: k.Grace.Duration(), Resync: k.Resync.Duration(),
		Logger: log, Clock: clock,
	}
}

// mirrorConfigured reports whether a config sets up mirroring (it may start disabled and be
// enabled from the admin API).
func mirrorConfigured(m configs.Mirror) bool {
	return m.Enabled || len(m.Backends) > 0 || m.ConsulService != ""
}

// newMirror builds the mirror of a config: shadow backends from mirror.backends (with
// mirror.consul_service, discovery publishes them), the queue, the sample, and enabled.
func newMirror(cfg configs.Mirror, log *zap.Logger) *mirror.Mirror {
	m := mirror.New(log.Named("mirror"), balancer.New(balancer.NewLeastSessions()), mirror.WithQueue(cfg.Queue))
	applyMirror(m, cfg)
	return m
}

// applyMirror applies the reloadable keys of the mirror section.
func applyMirror(m *mirror.Mirror, cfg configs.Mirror) {
	if cfg.ConsulService == "" {
		m.UpdateTargets(staticSpecs(cfg.Backends, sourceMirror))
	}
	m.SetSample(cfg.Sample)
	m.Enable(cfg.Enabled)
}

// adminToken is the admin API's bearer token: admin.token, admin.token_file, else
// $SIOPROXY_ADMIN_TOKEN; "" for none.
func adminToken(cfg *configs.Config, getenv func(string) string) (string, error) {
	token, err := cfg.Admin.ResolveToken()
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	if token == "" && getenv != nil {
		token = getenv("SIOPROXY_ADMIN_TOKEN")
	}
	return token, nil
}
