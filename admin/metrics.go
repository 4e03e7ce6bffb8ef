package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"sioproxy/balancer"
	"sioproxy/proxy"
)

var _ proxy.Metrics = (*Metrics)(nil)

var requestKinds = []string{"poll", "handshake", "upgrade", "other"}
var statusClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Metrics is the proxy's Prometheus instrumentation. It has its own registry (no global state) and
// implements proxy.Metrics with no allocation per request: every series is resolved up front.
type Metrics struct {
	Registry *prometheus.Registry

	requests   [4][5]prometheus.Counter
	latency    [4]prometheus.Observer
	sidUnknown prometheus.Counter
	handshakes *prometheus.CounterVec
	reloads    *prometheus.CounterVec

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
	reg.MustRegister(reqs, lat, m.sidUnknown, m.handshakes, m.reloads,
		m.clientConns, m.clientConnsMax, m.refusedVec, m.tunnelsRefused, m.acceptErrors,
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
func (m *Metrics) SIDUnknown() { m.sidUnknown.Inc() }

// Handshake implements proxy.Metrics.
func (m *Metrics) Handshake(backendID string) { m.handshakes.WithLabelValues(backendID).Inc() }

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
func (m *Metrics) Reload(result string) { m.reloads.WithLabelValues(result).Inc() }

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
