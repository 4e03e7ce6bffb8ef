package admin

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sioproxy/balancer"
)

var requestKinds = []string{"poll", "handshake", "upgrade", "other"}
var statusClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Metrics is the proxy's Prometheus instrumentation. It has its own registry (no global state) and
// implements proxy.Metrics with no allocation per request: every series is resolved up front.
type Metrics struct {
	Registry *prometheus.Registry

	requests    [4][5]prometheus.Counter
	latency     [4]prometheus.Observer
	sidUnknown  prometheus.Counter
	handshakes  *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	unavailable [3]prometheus.Counter // by balancer.Reason (OK unused)

	// totals of the same events, read by the dashboard's history sampler without going through
	// Prometheus.
	nHandshakes, nSIDUnknown, nUnavailable, nReloads, nReloadErrors atomic.Uint64
}

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
	for i, k := range requestKinds {
		for j, c := range statusClasses {
			m.requests[i][j] = reqs.WithLabelValues(k, c)
		}
		m.latency[i] = lat.WithLabelValues(k)
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
	unavailable := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sioproxy_unavailable_total",
		Help: "New sessions answered 503 with Retry-After because no backend could take them, by reason " +
			"(all_full: every eligible backend over its admission limits; no_backends: none eligible).",
	}, []string{"reason"})
	for _, r := range []balancer.Reason{balancer.NoBackends, balancer.AllFull} {
		m.unavailable[r] = unavailable.WithLabelValues(r.String())
	}
	reg.MustRegister(reqs, lat, m.sidUnknown, m.handshakes, m.reloads, unavailable,
		backendCollector{bal}, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Request implements proxy.Metrics.
func (m *Metrics) Request(kind string, status int, elapsed time.Duration) {
	k := kindIndex(kind)
	c := status/100 - 1
	if c < 0 || c > 4 {
		c = 4
	}
	m.requests[k][c].Inc()
	m.latency[k].Observe(elapsed.Seconds())
}

func kindIndex(kind string) int {
	for i, k := range requestKinds {
		if k == kind {
			return i
		}
	}
	return 3
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

// Reload counts a config reload ("ok" or "error").
func (m *Metrics) Reload(result string) {
	m.reloads.WithLabelValues(result).Inc()
	m.nReloads.Add(1)
	if result != "ok" {
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

// WatchConsul exports the state of Consul discovery.
func (m *Metrics) WatchConsul(healthy func() bool, indexAge func() time.Duration) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sioproxy_consul_healthy", Help: "1 when every Consul watch's last query succeeded."},
			func() float64 {
				if healthy() {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sioproxy_consul_last_index_age_seconds", Help: "Seconds since the oldest Consul watch last got an answer."},
			func() float64 { return indexAge().Seconds() }),
	)
}
