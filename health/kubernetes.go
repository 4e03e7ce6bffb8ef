package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	k8swatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"sioproxy/balancer"
)

// kubernetesSyncTimeout bounds the first full read of every service in Start, once the
// API server has answered the checks (it then only fails if the server goes away).
const kubernetesSyncTimeout = 30 * time.Second

// KubernetesOptions configure a KubernetesWatcher. They take explicit values: the
// defaults live in configs.
type KubernetesOptions struct {
	// Kubeconfig is the kubeconfig file to use; "" = $KUBECONFIG when set, else the
	// in-cluster config of a pod (its service account).
	Kubeconfig string
	// Services to watch, as "namespace/name".
	Services []string
	// PortName is the port of the EndpointSlices to send traffic to; "" = a slice's only
	// port, else its port named "http".
	PortName string
	// LabelSelector is ANDed with kubernetes.io/service-name=NAME ("" = none).
	LabelSelector string
	// Zone is the proxy's own zone; it is only reported here (the balancer prefers it,
	// see balancer.WithZonePreference).
	Zone string
	// Grace keeps an endpoint that is removed, or neither ready nor serving, as Draining
	// this long before it is dropped, so that its sessions end on it; 0 drops it at once.
	Grace time.Duration
	// Resync is client-go's resync period: the cached slices are handed to the watcher
	// again this often, and the sets recomputed (0 = never). An unchanged set is not
	// published.
	Resync time.Duration

	Logger *zap.Logger
	Clock  Clock // nil = SystemClock
	// Publish receives the full backend set of one service ("namespace/name"), merged
	// over all of its slices, each time it changes (never the same set twice in a row;
	// the first set, even empty, is published before Start returns). Calls for one
	// service come from one goroutine; calls for different services may run
	// concurrently; specs are not reused. [Sources.Set] fits.
	Publish func(service string, specs []balancer.Spec)
}

// KubernetesWatcher follows the EndpointSlices of Kubernetes services with client-go
// informers (list and watch, resync, relist after 410 Gone, all client-go's) and
// publishes their backend sets. While the API server is unreachable the informers keep
// the last known slices, so the last known set stays; client-go's reflector retries
// with its jittered exponential backoff (800 ms doubling to 30 s, each delay stretched
// by a random factor in [1, 2), reset after 2 min without errors).
type KubernetesWatcher struct {
	opts     KubernetesOptions
	log      *zap.Logger
	client   kubernetes.Interface
	selector labels.Selector // the extra LabelSelector (may be empty)
	services []*k8sService

	started atomic.Bool
	cancel  context.CancelFunc // of the informers' context
	wg      sync.WaitGroup
}

// k8sService is the informer and state of one watched service.
type k8sService struct {
	w         *KubernetesWatcher
	namespace string
	name      string
	key       string // namespace/name
	selector  string // the full label selector of its slices
	log       *zap.Logger
	informer  cache.SharedIndexInformer
	dirty     chan struct{} // 1 slot: bursts of events collapse into one refresh

	// Owned by the service's goroutine (and by Start before that goroutine runs).
	tr        *tracker
	published bool
	last      []balancer.Spec
	skipped   []string
	count     atomic.Int64 // len(last), for the log of another goroutine

	mu        sync.Mutex // guards downSince and the transitions of failing
	failing   atomic.Bool
	downSince time.Time
}

// NewKubernetesWatcher validates opts and loads the client config (the kubeconfig file,
// or the pod's service account); it does not contact the API server.
func NewKubernetesWatcher(opts KubernetesOptions) (*KubernetesWatcher, error) {
	cfg, err := kubernetesConfig(opts.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "sioproxy"
	cfg.ContentType = "application/vnd.kubernetes.protobuf" // slices decode far cheaper than JSON
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.WarningHandler = apiWarnings{opts.Logger}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("health: kubernetes: %w", err)
	}
	return newKubernetesWatcher(opts, client)
}

// newKubernetesWatcher is NewKubernetesWatcher with the client given.
func newKubernetesWatcher(opts KubernetesOptions, client kubernetes.Interface) (*KubernetesWatcher, error) {
	if opts.Publish == nil {
		return nil, errors.New("health: kubernetes: Publish is nil")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Grace < 0 {
		opts.Grace = 0
	}
	sel, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return nil, fmt.Errorf("health: kubernetes: label selector %q: %w", opts.LabelSelector, err)
	}
	w := &KubernetesWatcher{opts: opts, log: opts.Logger.Named("kubernetes"), client: client, selector: sel}
	seen := map[string]bool{}
	for _, s := range opts.Services {
		ns, name, ok := strings.Cut(s, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("health: kubernetes: service %q is not namespace/name", s)
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		full := discoveryv1.LabelServiceName + "=" + name
		if !sel.Empty() {
			full += "," + sel.String()
		}
		if _, err := labels.Parse(full); err != nil {
			return nil, fmt.Errorf("health: kubernetes: service %q: %w", s, err)
		}
		w.services = append(w.services, &k8sService{w: w, namespace: ns, name: name, key: s, selector: full,
			log: w.log.With(zap.String("service", s)), dirty: make(chan struct{}, 1), tr: newTracker(opts.Grace)})
	}
	if len(w.services) == 0 {
		return nil, errors.New("health: kubernetes: no service to watch")
	}
	return w, nil
}

// apiWarnings logs the warnings the API server sends (deprecations...) instead of client-go's
// default, which writes them to stderr.
type apiWarnings struct{ log *zap.Logger }

// HandleWarningHeader implements rest.WarningHandler.
func (a apiWarnings) HandleWarningHeader(code int, agent, text string) {
	if a.log != nil && code == 299 && text != "" {
		a.log.Warn("kubernetes API server warning", zap.String("warning", text))
	}
}

// kubernetesConfig loads the client config: the file, else $KUBECONFIG, else in-cluster.
func kubernetesConfig(path string) (*rest.Config, error) {
	var rules *clientcmd.ClientConfigLoadingRules
	switch {
	case path != "":
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "":
		rules = clientcmd.NewDefaultClientConfigLoadingRules()
	default:
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("health: kubernetes: no kubeconfig given and not in a pod: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("health: kubernetes: kubeconfig: %w", err)
	}
	return cfg, nil
}

// Start checks that every service can be listed and watched, starts the informers, waits
// for the first full read of every service and publishes it; then it returns, and the
// watcher runs until ctx is done (see Wait). Its error names what is wrong: the API
// server unreachable, credentials refused, RBAC lacking list or watch on EndpointSlices
// in a namespace, a namespace that does not exist. Call it once.
func (w *KubernetesWatcher) Start(ctx context.Context) error {
	if w.started.Swap(true) {
		return errors.New("health: kubernetes: Start called twice")
	}
	for _, s := range w.services {
		if err := s.check(ctx); err != nil {
			return err
		}
	}
	// client-go logs through the context's logger (klog's global one is left alone).
	ictx, cancel := context.WithCancel(klog.NewContext(ctx, zapr.NewLogger(w.log.Named("client-go"))))
	w.cancel = cancel
	synced := make([]cache.InformerSynced, 0, len(w.services))
	for _, s := range w.services {
		s.informer = s.newInformer()
		synced = append(synced, s.informer.HasSynced)
		w.wg.Go(func() { s.informer.RunWithContext(ictx) })
	}
	sctx, scancel := context.WithTimeout(ictx, kubernetesSyncTimeout)
	ok := cache.WaitForCacheSync(sctx.Done(), synced...)
	scancel()
	if !ok {
		cancel()
		w.wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("health: kubernetes: EndpointSlices not read within %s", kubernetesSyncTimeout)
	}
	for _, s := range w.services {
		s.refresh()
		if len(s.last) == 0 {
			s.log.Warn("service has no ready or serving endpoints (yet)", zap.String("selector", s.selector))
		}
		w.wg.Go(func() {
			defer w.cancel() // releases ictx once ctx is done
			s.run(ictx)
		})
	}
	w.log.Info("watching EndpointSlices", zap.Int("services", len(w.services)), zap.String("zone", w.opts.Zone),
		zap.Duration("grace", w.opts.Grace), zap.Duration("resync", w.opts.Resync))
	return nil
}

// Wait returns once every goroutine of a started watcher has ended (after the context
// given to Start is done).
func (w *KubernetesWatcher) Wait() { w.wg.Wait() }

// Healthy reports whether the last list or watch request of every service reached the
// API server; false while it is unreachable (or refuses us).
func (w *KubernetesWatcher) Healthy() bool {
	for _, s := range w.services {
		if s.failing.Load() {
			return false
		}
	}
	return true
}

// check lists and watches the slices of s once, so that Start fails with a clear
// error instead of informers retrying forever.
func (s *k8sService) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, kubernetesSyncTimeout)
	defer cancel()
	api := s.w.client.DiscoveryV1().EndpointSlices(s.namespace)
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: s.selector, Limit: 1})
	if err != nil {
		return s.startError("list", err)
	}
	timeout := int64(1)
	wt, err := api.Watch(ctx, metav1.ListOptions{LabelSelector: s.selector, ResourceVersion: list.ResourceVersion,
		TimeoutSeconds: &timeout, AllowWatchBookmarks: true})
	if err != nil {
		return s.startError("watch", err)
	}
	wt.Stop()
	// An unknown namespace lists as empty; say so when we may read namespaces (a Role
	// of the namespace cannot grant that, so Forbidden is no error).
	if _, err := s.w.client.CoreV1().Namespaces().Get(ctx, s.namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return fmt.Errorf("health: kubernetes: service %s: namespace %q does not exist", s.key, s.namespace)
	}
	return nil
}

// startError explains a failed list or watch in Start.
func (s *k8sService) startError(verb string, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("health: kubernetes: service %s: not allowed to %s endpointslices.discovery.k8s.io in namespace %q; "+
			"grant list and watch on them (a Role and RoleBinding, see deploy/kubernetes): %w", s.key, verb, s.namespace, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("health: kubernetes: service %s: the API server refused our credentials: %w", s.key, err)
	}
	return fmt.Errorf("health: kubernetes: service %s: %s endpointslices: %w", s.key, verb, err)
}

// newInformer builds the EndpointSlice informer of s: its list and watch calls go
// through s so that Healthy follows them.
func (s *k8sService) newInformer() cache.SharedIndexInformer {
	api := s.w.client.DiscoveryV1().EndpointSlices(s.namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = s.selector
			obj, err := api.List(ctx, o)
			s.note(ctx, err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (k8swatch.Interface, error) {
			o.LabelSelector = s.selector
			wt, err := api.Watch(ctx, o)
			s.note(ctx, err)
			return wt, err
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, api),
		&discoveryv1.EndpointSlice{}, cache.SharedIndexInformerOptions{
			ResyncPeriod: s.w.opts.Resync, ObjectDescription: "endpointslices " + s.key,
		})
	_ = inf.SetTransform(func(obj any) (any, error) { // keep the cache small
		if sl, ok := obj.(*discoveryv1.EndpointSlice); ok {
			sl.ManagedFields = nil
			sl.Annotations = nil
		}
		return obj, nil
	})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		s.log.Debug("endpointslice list/watch ended", zap.Error(err)) // the reflector retries
	})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.poke() },
		UpdateFunc: func(_, _ any) { s.poke() },
		DeleteFunc: func(any) { s.poke() },
	})
	return inf
}

// poke schedules a refresh; never blocks.
func (s *k8sService) poke() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// note records the outcome of a list or watch request; only transitions are logged.
func (s *k8sService) note(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // shutting down
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.w.opts.Clock.Now()
	if err != nil {
		if !s.failing.Swap(true) {
			s.downSince = now
			s.log.Warn("kubernetes API server unreachable, keeping the last known backends",
				zap.Int64("backends", s.count.Load()), zap.Error(err))
		}
		return
	}
	if s.failing.Swap(false) {
		s.log.Info("kubernetes API server reachable again", zap.Duration("down_for", now.Sub(s.downSince)))
	}
}

// run refreshes s on every change of its slices and when a grace ends, until ctx is done.
func (s *k8sService) run(ctx context.Context) {
	clock := s.w.opts.Clock
	for {
		var expire <-chan time.Time
		if dl, ok := s.tr.next(); ok {
			expire = clock.After(max(dl.Sub(clock.Now()), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		case <-expire:
		}
		s.refresh()
	}
}

// refresh recomputes the set of s from the informer's cache and publishes it if it changed.
func (s *k8sService) refresh() {
	objs := s.informer.GetStore().List()
	list := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			list = append(list, sl)
		}
	}
	specs, skipped := SpecsFromSlices(s.namespace, s.name, list, s.w.opts.PortName)
	if !slices.Equal(skipped, s.skipped) {
		s.skipped = skipped
		if len(skipped) > 0 {
			s.log.Warn("EndpointSlices without the wanted port skipped", zap.Strings("slices", skipped),
				zap.String("port_name", s.w.opts.PortName))
		}
	}
	now := s.w.opts.Clock.Now()
	s.tr.apply(specs, now)
	s.publish(s.tr.specs(now), len(list))
}

// publish hands specs to Publish unless they equal the last published set.
func (s *k8sService) publish(specs []balancer.Spec, nslices int) {
	if s.published && slices.Equal(specs, s.last) {
		return
	}
	logSpecChanges(s.log, s.last, specs)
	active, local := 0, 0
	for _, sp := range specs {
		if sp.State == balancer.Active {
			active++
			if sp.Zone != "" && sp.Zone == s.w.opts.Zone {
				local++
			}
		}
	}
	s.log.Debug("kubernetes backends published", zap.Int("slices", nslices), zap.Int("total", len(specs)),
		zap.Int("active", active), zap.Int("active_in_zone", local))
	s.published = true
	s.last = specs
	s.count.Store(int64(len(specs)))
	s.w.opts.Publish(s.key, slices.Clone(specs))
}

// logSpecChanges logs each backend that appeared, changed or left between two sets.
func logSpecChanges(log *zap.Logger, last, specs []balancer.Spec) {
	prev := make(map[string]balancer.Spec, len(last))
	for _, sp := range last {
		prev[sp.ID] = sp
	}
	for _, sp := range specs {
		p, ok := prev[sp.ID]
		delete(prev, sp.ID)
		switch {
		case !ok:
			log.Info("backend added", zap.String("id", sp.ID), zap.String("addr", sp.Addr),
				zap.Stringer("state", sp.State), zap.String("zone", sp.Zone))
		case p != sp:
			log.Info("backend changed", zap.String("id", sp.ID), zap.String("addr", sp.Addr),
				zap.Stringer("from", p.State), zap.Stringer("state", sp.State), zap.String("zone", sp.Zone))
		}
	}
	for id := range prev {
		log.Info("backend removed", zap.String("id", id))
	}
}
