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

	// The Kubernetes watch is started when the set is built (Start checks RBAC and reads every
	// service whole, so a reload that cannot watch is refused), but what it publishes is held
	// until the set is swapped in (live).
	kube         *health.KubernetesWatcher // nil when Kubernetes discovery is off
	kubeServices []string                  // "namespace/name"
	kubeGrace    time.Duration             // discovery.kubernetes.grace
	kubeCancel   context.CancelFunc        // nil until started
	gate         sync.Mutex                // orders the held answers before the live ones
	live         bool
	held         map[string][]balancer.Spec // the last answer of each service before live

	cancel context.CancelFunc
	done   chan struct{}
}

// discovery owns the discovery lifecycle. The current watch set is read through an atomic pointer,
// so the admin API and the metrics see whichever set runs, without a lock and without a race with a
// reload.
type discovery struct {
	log     *zap.Logger
	clock   health.Clock
	sources *health.Sources
	mirror  *mirror.Mirror // nil: no mirroring

	current atomic.Pointer[watchSet]
	mu      sync.Mutex // serializes start, swap and stop
}

// build makes the watch set of cfg. The Consul watch is built, not started; the Kubernetes watch
// is started under ctx (nil: built only, for a daemon not yet running), its answers held until
// swap. A set that cannot be built or started returns an error and leaves nothing running.
func (d *discovery) build(ctx context.Context, cfg *configs.Config) (*watchSet, error) {
	c := cfg.Discovery.Consul
	ws := &watchSet{services: slices.Clone(c.Services), grace: c.DeregisterGrace.Duration()}
	if d.mirror != nil && cfg.Mirror.ConsulService != "" {
		ws.shadow = cfg.Mirror.ConsulService
	}
	watched := ws.services
	if ws.shadow != "" && !slices.Contains(watched, ws.shadow) {
		watched = append(slices.Clone(watched), ws.shadow)
	}
	if len(watched) > 0 {
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
	}
	if k := cfg.Discovery.Kubernetes; k.Enabled() {
		ws.kubeServices, ws.kubeGrace = slices.Clone(k.Services), k.Grace.Duration()
		opts := kubernetesOptions(cfg, d.log, d.clock)
		opts.Publish = d.kubePublisher(ws)
		w, err := health.NewKubernetesWatcher(opts)
		if err != nil {
			return nil, err
		}
		ws.kube = w
		if ctx != nil {
			kctx, cancel := context.WithCancel(ctx)
			if err := w.Start(kctx); err != nil {
				cancel()
				w.Wait()
				return nil, err
			}
			ws.kubeCancel = cancel
		}
	}
	return ws, nil
}

// kubePublisher routes the Kubernetes watch's answers to the merged backend set, once the set is
// live; before that it keeps the last answer of each service. The watcher keeps removed and
// unready endpoints for its grace itself, so the merged set adds none.
func (d *discovery) kubePublisher(ws *watchSet) func(string, []balancer.Spec) {
	return func(service string, specs []balancer.Spec) {
		if specs == nil {
			specs = []balancer.Spec{}
		}
		ws.gate.Lock()
		defer ws.gate.Unlock()
		if !ws.live {
			if ws.held == nil {
				ws.held = map[string][]balancer.Spec{}
			}
			ws.held[service] = specs
			return
		}
		d.sources.Set(sourceKubePrefix+service, specs, 0)
	}
}

// goLive publishes the held answers of the Kubernetes watch and lets the next ones through. An
// endpoint that the previous watch set still listed and this one does not drains for the grace
// (the previous watcher's memory of endpoints in their grace is gone with it).
func (ws *watchSet) goLive(sources *health.Sources) {
	ws.gate.Lock()
	defer ws.gate.Unlock()
	for _, svc := range ws.kubeServices {
		if specs, ok := ws.held[svc]; ok {
			sources.Set(sourceKubePrefix+svc, specs, ws.kubeGrace)
		}
	}
	ws.held, ws.live = nil, true
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
		for _, svc := range prev.kubeServices {
			if !slices.Contains(next.kubeServices, svc) {
				d.sources.Set(sourceKubePrefix+svc, nil, prev.kubeGrace)
			}
		}
	}
	next.goLive(d.sources)
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
	if ws.kubeCancel != nil {
		ws.kubeCancel()
		ws.kube.Wait()
		ws.kubeCancel = nil
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

// kubeHealthy reports whether the current Kubernetes watch's last list and watch requests reached
// the API server (true when Kubernetes discovery is off).
func (d *discovery) kubeHealthy() bool {
	ws := d.current.Load()
	return ws == nil || ws.kube == nil || ws.kube.Healthy()
}
