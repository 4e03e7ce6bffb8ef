package daemon

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/health"
	"sioproxy/proxy/mirror"
)

// watchSet is one generation of discovery: the watchers a config asks for, built before they run
// (so that a reload that cannot build them changes nothing), then started, and stopped and waited
// for when a reload replaces them or the process stops.
type watchSet struct {
	consul   *health.ConsulWatcher // nil when Consul discovery is off
	services []string              // the Consul services whose backends it publishes
	shadow   string                // the mirror's shadow service among them ("" for none)
	grace    time.Duration         // discovery.consul.deregister_grace: a dropped service's backends drain this long

	cancel context.CancelFunc
	done   chan struct{}
}

// discovery owns the discovery lifecycle. The current watch set is read through an atomic pointer,
// so the admin API and the metrics see whichever set runs, without a lock and without a race with a
// reload.
type discovery struct {
	log     *zap.Logger
	sources *health.Sources
	mirror  *mirror.Mirror // nil: no mirroring

	current atomic.Pointer[watchSet]
	mu      sync.Mutex // serializes start, swap and stop
}

// build makes the watch set of cfg without starting it.
func (d *discovery) build(cfg *configs.Config) (*watchSet, error) {
	c := cfg.Discovery.Consul
	ws := &watchSet{services: slices.Clone(c.Services), grace: c.DeregisterGrace.Duration()}
	if d.mirror != nil && cfg.Mirror.ConsulService != "" {
		ws.shadow = cfg.Mirror.ConsulService
	}
	watched := ws.services
	if ws.shadow != "" && !slices.Contains(watched, ws.shadow) {
		watched = append(slices.Clone(watched), ws.shadow)
	}
	if len(watched) == 0 {
		return ws, nil
	}
	opts, err := consulOptions(cfg, watched, d.log)
	if err != nil {
		return nil, err
	}
	opts.Publish = d.publisher(ws)
	w, err := health.NewConsulWatcher(opts)
	if err != nil {
		return nil, err
	}
	ws.consul = w
	return ws, nil
}

// publisher routes a watch set's answers: the shadow service to the mirror, the others to the
// merged backend set. The watcher keeps deregistered instances for its grace itself, so the merged
// set adds none.
func (d *discovery) publisher(ws *watchSet) func(string, []balancer.Spec) {
	return func(service string, specs []balancer.Spec) {
		if service == ws.shadow && d.mirror != nil {
			d.mirror.UpdateTargets(specs)
			if !slices.Contains(ws.services, service) {
				return
			}
		}
		if specs == nil {
			specs = []balancer.Spec{}
		}
		d.sources.Set(sourceConsulPrefix+service, specs, 0)
	}
}

// swap stops the running watch set (if any), waits for it, lets the backends of services that next
// no longer watches drain for their grace, and starts next under ctx. The backends of services both
// watch stay as they are until next publishes, so a change of Consul address or token loses none.
func (d *discovery) swap(ctx context.Context, next *watchSet) {
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.current.Load()
	if prev != nil {
		prev.stop()
		for _, svc := range prev.services {
			if !slices.Contains(next.services, svc) {
				d.sources.Set(sourceConsulPrefix+svc, nil, prev.grace)
			}
		}
	}
	if next.consul != nil {
		wctx, cancel := context.WithCancel(ctx)
		next.cancel, next.done = cancel, make(chan struct{})
		go func() {
			defer close(next.done)
			next.consul.Run(wctx)
		}()
	}
	d.current.Store(next)
}

// stop stops the running watch set and waits for it.
func (d *discovery) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ws := d.current.Load(); ws != nil {
		ws.stop()
	}
}

func (ws *watchSet) stop() {
	if ws.cancel != nil {
		ws.cancel()
		<-ws.done
		ws.cancel = nil
	}
}

// consulHealthy reports whether the current Consul watch's last queries succeeded (true when
// Consul discovery is off).
func (d *discovery) consulHealthy() bool {
	ws := d.current.Load()
	return ws == nil || ws.consul == nil || ws.consul.Healthy()
}

// consulIndexAge is the time since the current Consul watch's oldest last answer.
func (d *discovery) consulIndexAge() time.Duration {
	ws := d.current.Load()
	if ws == nil || ws.consul == nil {
		return 0
	}
	return ws.consul.LastIndexAge()
}

// consulOn reports whether a Consul watch runs.
func (d *discovery) consulOn() bool {
	ws := d.current.Load()
	return ws != nil && ws.consul != nil
}
