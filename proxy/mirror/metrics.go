package mirror

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes the mirror's totals and comparison to Prometheus, read at scrape time. Event
// names are bounded (maxEventNames), so the label sets are too.
type collector struct{ m *Mirror }

var (
	descSessions = prometheus.NewDesc("sioproxy_mirror_sessions_total",
		"New sessions seen by the mirror, by result (mirrored, skipped: not sampled or over the limit).", []string{"result"}, nil)
	descActive = prometheus.NewDesc("sioproxy_mirror_sessions_active",
		"Sessions being mirrored now.", nil, nil)
	descFailures = prometheus.NewDesc("sioproxy_mirror_shadow_failures_total",
		"Shadow sessions that failed (connect, handshake, write or read).", nil, nil)
	descPackets = prometheus.NewDesc("sioproxy_mirror_packets_total",
		"Client packets of mirrored sessions, by result (replayed, dropped, skipped heartbeats and probes, decode_error).", []string{"result"}, nil)
	descHTTP = prometheus.NewDesc("sioproxy_mirror_http_requests_total",
		"Plain HTTP requests mirrored, by result (mirrored, dropped, failed).", []string{"result"}, nil)
	descAcks = prometheus.NewDesc("sioproxy_mirror_acks_total",
		"Ack comparisons of acknowledged client emits, by event and result (same, different, missing_shadow, missing_primary).", []string{"event", "result"}, nil)
	descEvents = prometheus.NewDesc("sioproxy_mirror_server_events_total",
		"Server-to-client Socket.IO events, by side (primary, shadow) and event name.", []string{"side", "event"}, nil)
)

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSessions, descActive, descFailures, descPackets, descHTTP, descAcks, descEvents} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.stats
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descSessions, s.sessionsMirrored.Load(), "mirrored")
	counter(descSessions, s.sessionsSkipped.Load(), "skipped")
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(s.sessionsActive.Load()))
	counter(descFailures, s.shadowFailures.Load())
	counter(descPackets, s.packetsReplayed.Load(), "replayed")
	counter(descPackets, s.packetsDropped.Load(), "dropped")
	counter(descPackets, s.packetsSkipped.Load(), "skipped")
	counter(descPackets, s.decodeErrors.Load(), "decode_error")
	counter(descHTTP, s.httpMirrored.Load(), "mirrored")
	counter(descHTTP, s.httpDropped.Load(), "dropped")
	counter(descHTTP, s.httpFailed.Load(), "failed")
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.events {
		for r, v := range e.acks {
			if v > 0 {
				counter(descAcks, v, name, ackResultNames[r])
			}
		}
		for side, v := range e.events {
			if v > 0 {
				counter(descEvents, v, sideNames[side], name)
			}
		}
	}
}

// Register adds the mirror's metrics to reg: the collector, and an ack latency histogram per side.
func (m *Mirror) Register(reg prometheus.Registerer) error {
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sioproxy_mirror_ack_latency_seconds",
		Help:    "Ack latency of mirrored emits, by side: primary (client packet to primary ack, seen by the proxy), shadow (replayed packet to shadow ack).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"side"})
	if err := reg.Register(lat); err != nil {
		return err
	}
	if err := reg.Register(collector{m}); err != nil {
		return err
	}
	obs := [2]prometheus.Observer{lat.WithLabelValues(sideNames[0]), lat.WithLabelValues(sideNames[1])}
	m.stats.hooks.latency = func(side int, d time.Duration) { obs[side].Observe(d.Seconds()) }
	return nil
}
