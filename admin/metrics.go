package admin

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sioproxy/balancer"
	"sioproxy/proxy"
)

var _ proxy.Metrics = (*Metrics)(nil)

var statusClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Metrics is the proxy's Prometheus instrumentation. It has its own registry (no global state) and
// implements proxy.Metrics with no allocation per request: every series is resolved up front.
type Metrics struct {
	Registry *prometheus.Registry

	requests    [proxy.NumKinds][5]prometheus.Counter
	latency     [proxy.NumKinds]prometheus.Observer
	sidUnknown  prometheus.Counter
	handshakes  *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	reloadOK    prometheus.Gauge
	reloadAt    prometheus.Gauge
	unavailable [3]prometheus.Counter // by balancer.Reason (OK unused)

	// totals of the same events, read by the dashboard's history sampler without going through
	// Prometheus.
	nHandshakes, nSIDUnknown, nUnavailable, nReloads, nReloadErrors atomic.Uint64

	clientConns    prometheus.Gauge
	clientConnsMax prometheus.Gauge
	refused        map[string]prometheus.Counter
	refusedVec     *prometheus.CounterVec
	tunnelsRefused prometheus.Counter
	acceptErrors   prometheus.Counter
}

// refusedReasons are the reasons a client connection is closed at once (proxy.Refused*).
var refusedReasons = []string{proxy.RefusedMaxConns, proxy.RefusedPerIP, proxy.RefusedFDReserve, proxy.RefusedProxyHeader}

// NewMetrics registers the sioproxy metrics and a collector of per-backend gauges read from bal.
func NewMetrics(bal *balancer.Balancer) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{Registry: reg}
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sioproxy_requests_total", Help: "HTTP requests handled, by kind and status class.",
	}, []string{"kind", "code"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sioproxy_request_duration_seconds",
		Help:    "Time from request to response, backend included (long-polls wait for data), by kind.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"kind"})
	for k := range proxy.NumKinds {
		for j, c := range statusClasses {
			m.requests[k][j] = reqs.WithLabelValues(k.String(), c)
		}
		m.latency[k] = lat.WithLabelValues(k.String())
	}
	m.sidUnknown = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sioproxy_sid_unknown_total", Help: `Requests answered 400 "Session ID unknown" by the proxy (unknown sid or owner unreachable).`,
	})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sioproxy_handshakes_total", Help: "Engine.IO sessions created, by backend.",
	}, []string{"backend"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sioproxy_reloads_total", Help: "Config reloads, by result.",
	}, []string{"result"})
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sioproxy_config_last_reload_successful", Help: "1 when the last config reload was applied (or none was tried), 0 when it was refused.",
	})
	m.reloadOK.Set(1)
	m.reloadAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sioproxy_config_last_reload_success_timestamp_seconds", Help: "Unix time of the last applied config (the start, or the last successful reload).",
	})
	m.reloadAt.SetToCurrentTime()
	unavailable := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sioproxy_unavailable_total",
		Help: "New sessions answered 503 with Retry-After because no backend could take them, by reason " +
			"(all_full: every eligible backend over its admission limits; no_backends: none eligible).",
	}, []string{"reason"})
	for _, r := range []balancer.Reason{balancer.NoBackends, balancer.AllFull} {
		m.unavailable[r] = unavailable.WithLabelValues(r.String())
	}
	m.clientConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sioproxy_client_conns", Help: "Live client connections (WebSocket tunnels included).",
	})
	m.clientConnsMax = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sioproxy_client_conns_max", Help: "The limit on client connections (proxy.max_client_conns; 0 = none).",
	})
	m.refusedVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sioproxy_conns_refused_total", Help: "Client connections closed at once, by reason: max_conns, per_ip, fd_reserve (descriptors near the limit), proxy_header.",
	}, []string{"reason"})
	m.refused = make(map[string]prometheus.Counter, len(refusedReasons))
	for _, r := range refusedReasons {
		m.refused[r] = m.refusedVec.WithLabelValues(r)
	}
	m.tunnelsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sioproxy_tunnels_refused_total", Help: "WebSocket upgrades answered 503 at the tunnel limit (proxy.max_tunnels).",
	})
	m.acceptErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sioproxy_accept_errors_total", Help: "accept(2) failures (EMFILE, ...); the listener backs off 5 ms to 1 s and retries.",
	})
	reg.MustRegister(reqs, lat, m.sidUnknown, m.handshakes, m.reloads, m.reloadOK, m.reloadAt, unavailable,
		m.clientConns, m.clientConnsMax, m.refusedVec, m.tunnelsRefused, m.acceptErrors,
		backendCollector{bal}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Request implements proxy.Metrics.
func (m *Metrics) Request(kind proxy.Kind, status int, elapsed time.Duration) {
	if kind >= proxy.NumKinds {
		kind = proxy.KindOther
	}
	c := status/100 - 1
	if c < 0 || c > 4 {
		c = 4
	}
	m.requests[kind][c].Inc()
	m.latency[kind].Observe(elapsed.Seconds())
}

// SIDUnknown implements proxy.Metrics.
func (m *Metrics) SIDUnknown() {
	m.sidUnknown.Inc()
	m.nSIDUnknown.Add(1)
}

// Handshake implements proxy.Metrics.
func (m *Metrics) Handshake(backendID string) {
	m.handshakes.WithLabelValues(backendID).Inc()
	m.nHandshakes.Add(1)
}

// Unavailable implements proxy.Metrics.
func (m *Metrics) Unavailable(reason balancer.Reason) {
	if reason != balancer.NoBackends && reason != balancer.AllFull {
		reason = balancer.NoBackends
	}
	m.unavailable[reason].Inc()
	m.nUnavailable.Add(1)
}

// ClientConns implements proxy.Metrics.
func (m *Metrics) ClientConns(delta int) { m.clientConns.Add(float64(delta)) }

// ClientConnsMax implements proxy.Metrics.
func (m *Metrics) ClientConnsMax(n int) { m.clientConnsMax.Set(float64(n)) }

// ConnRefused implements proxy.Metrics.
func (m *Metrics) ConnRefused(reason string) {
	if c, ok := m.refused[reason]; ok {
		c.Inc()
		return
	}
	m.refusedVec.WithLabelValues(reason).Inc()
}

// TunnelRefused implements proxy.Metrics.
func (m *Metrics) TunnelRefused() { m.tunnelsRefused.Inc() }

// AcceptError implements proxy.Metrics.
func (m *Metrics) AcceptError() { m.acceptErrors.Inc() }

// Reload counts a config reload ("ok" or "error").
func (m *Metrics) Reload(result string) {
	m.reloads.WithLabelValues(result).Inc()
	m.nReloads.Add(1)
	if result == "ok" {
		m.reloadOK.Set(1)
		m.reloadAt.SetToCurrentTime()
	} else {
		m.reloadOK.Set(0)
		m.nReloadErrors.Add(1)
	}
}

// Counts are the process's totals of the events the dashboard charts.
type Counts struct {
	Handshakes   uint64 `json:"handshakes"`    // sessions created
	SIDUnknown   uint64 `json:"sid_unknown"`   // "Session ID unknown" answers
	Unavailable  uint64 `json:"unavailable"`   // 503s to new sessions
	Reloads      uint64 `json:"reloads"`       // config reloads, refused ones included
	ReloadErrors uint64 `json:"reload_errors"` // refused reloads
}

// Counts returns the totals so far (zero for a nil Metrics).
func (m *Metrics) Counts() Counts {
	if m == nil {
		return Counts{}
	}
	return Counts{m.nHandshakes.Load(), m.nSIDUnknown.Load(), m.nUnavailable.Load(), m.nReloads.Load(), m.nReloadErrors.Load()}
}

// backendCollector exports the live counters of every backend of the current snapshot.
type backendCollector struct{ bal *balancer.Balancer }

var (
	descSessions = prometheus.NewDesc("sioproxy_backend_sessions", "Live Engine.IO sessions per backend.", []string{"backend"}, nil)
	descTunnels  = prometheus.NewDesc("sioproxy_backend_tunnels", "Live WebSocket tunnels per backend.", []string{"backend"}, nil)
	descInFlight = prometheus.NewDesc("sioproxy_backend_inflight_requests", "HTTP requests in flight per backend.", []string{"backend"}, nil)
	descFailures = prometheus.NewDesc("sioproxy_backend_failures_total", "Passive failures (dial errors, 5xx handshakes) per backend.", []string{"backend"}, nil)
	descState    = prometheus.NewDesc("sioproxy_backend_active", "1 when the backend takes new sessions, 0 when draining.", []string{"backend"}, nil)
)

func (backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessions
	ch <- descTunnels
	ch <- descInFlight
	ch <- descFailures
	ch <- descState
}

func (c backendCollector) Collect(ch chan<- prometheus.Metric) {
	for _, be := range c.bal.Snapshot().Backends {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(be.Sessions.Load()), be.ID)
		ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.GaugeValue, float64(be.Tunnels.Load()), be.ID)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(be.InFlight.Load()), be.ID)
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(be.Failures.Load()), be.ID)
		active := 0.0
		if be.State == balancer.Active {
			active = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, active, be.ID)
	}
}

// RegisterDiscovery exports the state of one discovery provider (provider is "consul" or
// "kubernetes"): sioproxy_<provider>_healthy, and sioproxy_<provider>_last_index_age_seconds when age
// is not nil. Register a provider once for the life of the process: healthy and age read whatever
// watcher is current (a reload replaces it). A second registration of a name is an error.
func (m *Metrics) RegisterDiscovery(provider string, healthy func() bool, age func() time.Duration) error {
	cs := []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sioproxy_" + provider + "_healthy",
		Help: "1 when the last request of every " + provider + " watch succeeded.",
	}, func() float64 {
		if healthy() {
			return 1
		}
		return 0
	})}
	if age != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sioproxy_" + provider + "_last_index_age_seconds",
			Help: "Seconds since the oldest " + provider + " watch last got an answer.",
		}, func() float64 { return age().Seconds() }))
	}
	for _, c := range cs {
		if err := m.Registry.Register(c); err != nil {
			return fmt.Errorf("metrics: %s discovery: %w", provider, err)
		}
	}
	return nil
}
