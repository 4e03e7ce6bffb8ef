package main

import (
	"errors"

	"sioproxy/configs"
)

// loadConfig reads the config file (or starts from the defaults), applies the flags that were given
// over it (a flag overrides its key), then normalizes and validates the result once.
func loadConfig(o *options) (*configs.Config, error) {
	cfg := configs.Default()
	if o.config != "" {
		var err error
		if cfg, err = configs.Read(o.config); err != nil {
			return nil, err
		}
	}
	set := func(flag, key string, apply func()) {
		if o.set[flag] {
			apply()
			cfg.SetByFlag(key, flag)
		}
	}
	set("listen", "listen", func() { cfg.Listen = o.listen })
	set("backend", "backends", func() {
		cfg.Backends = nil
		for _, u := range o.backends {
			cfg.Backends = append(cfg.Backends, configs.Backend{URL: u})
		}
	})
	set("path", "sticky.paths", func() { cfg.Sticky.Paths = append([]string(nil), o.paths...) })
	set("log-level", "log.level", func() { cfg.Log.Level = o.logLevel })
	set("log-format", "log.format", func() { cfg.Log.Format = o.logFormat })
	set("admin-listen", "admin.listen", func() { cfg.Admin.Listen = o.admin })
	set("consul-addr", "discovery.consul.address", func() { cfg.Discovery.Consul.Address = o.consul })
	set("consul-service", "discovery.consul.services", func() {
		cfg.Discovery.Consul.Services = append([]string(nil), o.services...)
	})
	set("kubeconfig", "discovery.kubernetes.kubeconfig", func() { cfg.Discovery.Kubernetes.Kubeconfig = o.kubecfg })
	set("k8s-service", "discovery.kubernetes.services", func() {
		cfg.Discovery.Kubernetes.Services = append([]string(nil), o.k8sSvcs...)
	})
	set("k8s-zone", "discovery.kubernetes.zone", func() { cfg.Discovery.Kubernetes.Zone = o.k8sZone })
	set("policy", "balancer.policy", func() { cfg.Balancer.Policy = o.policy })
	if o.set["tls-cert"] != o.set["tls-key"] {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	set("tls-cert", "tls.certificates", func() {
		cfg.TLS.Certificates = []configs.Certificate{{CertFile: o.tlsCert, KeyFile: o.tlsKey}}
	})
	set("proxy-protocol-from", "proxy_protocol_from", func() { cfg.ProxyProtocolFrom = append([]string(nil), o.ppFrom...) })
	if err := cfg.Finish(); err != nil {
		return nil, err
	}
	return cfg, nil
}
