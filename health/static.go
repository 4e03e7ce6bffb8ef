package health

import (
	"sioproxy/balancer"
	"sioproxy/configs"
)

// StaticSpecs turns configured (validated, normalized) backends into balancer specs of a source
// ("static" for the proxy's own backends, "mirror" for a shadow cluster).
func StaticSpecs(bs []configs.Backend, source string) []balancer.Spec {
	specs := make([]balancer.Spec, 0, len(bs))
	for _, b := range bs {
		addr, tls := b.Addr()
		s := balancer.Spec{ID: b.EffectiveID(), Addr: addr, TLS: tls, Weight: b.EffectiveWeight(), State: balancer.Active, Source: source}
		if b.Drain {
			s.State = balancer.Draining
		}
		specs = append(specs, s)
	}
	return specs
}
