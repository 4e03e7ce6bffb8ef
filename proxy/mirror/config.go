package mirror

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/health"
)

// FromConfig builds a Mirror from the mirror section of a validated config: shadow backends from
// mirror.backends, placed by least sessions (with mirror.consul_service the caller publishes the
// discovered instances through UpdateTargets), the queue length, the sample, and enabled. Its
// metrics are registered on reg when reg is not nil.
func FromConfig(cfg configs.Mirror, log *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Mirror, error) {
	if log == nil {
		log = zap.NewNop()
	}
	queue := cfg.Queue
	if queue <= 0 {
		queue = DefaultQueue
	}
	m := New(log.Named("mirror"), balancer.New(balancer.NewLeastSessions()), append([]Option{WithQueue(queue)}, opts...)...)
	m.UpdateTargets(TargetSpecs(cfg.Backends))
	m.SetSample(cfg.Sample)
	m.Enable(cfg.Enabled)
	if reg != nil {
		if err := m.Register(reg); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// TargetSpecs turns configured shadow backends into balancer specs.
func TargetSpecs(bs []configs.Backend) []balancer.Spec { return health.StaticSpecs(bs, "mirror") }
