package mirror

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"sioproxy/proxy"
)

// Bounds of the comparison state (bounded cardinality and memory whatever the traffic).
const (
	maxEventNames    = 200       // distinct event names tracked; the rest count as otherEvent
	otherEvent       = "(other)" // bucket of the names beyond maxEventNames
	unknownEvent     = "(unknown)"
	maxSamples       = 10  // payload pairs kept in the report
	maxSamplesPerEvt = 2   // of which per event
	sampleBytes      = 256 // each payload truncated to this
	latencyWindow    = 4096
	topDivergent     = 10
)

// Ack comparison outcomes.
const (
	ackSame = iota
	ackDifferent
	ackMissingShadow
	ackMissingPrimary
	numAckResults
)

var ackResultNames = [numAckResults]string{"same", "different", "missing_shadow", "missing_primary"}

// Sides of a comparison.
const (
	sidePrimary = 0
	sideShadow  = 1
)

var sideNames = [2]string{"primary", "shadow"}

// counters are the mirror's totals.
type counters struct {
	sessionsMirrored atomic.Uint64
	sessionsSkipped  atomic.Uint64 // not sampled, disabled, or over the session limit
	sessionsActive   atomic.Int64
	shadowFailures   atomic.Uint64 // shadow dial, handshake, write or read failures
	packetsReplayed  atomic.Uint64
	packetsDropped   atomic.Uint64 // queue overflow or failed shadow
	packetsSkipped   atomic.Uint64 // client heartbeats, probes, upgrade packets: never replayed
	decodeErrors     atomic.Uint64
	httpMirrored     atomic.Uint64
	httpDropped      atomic.Uint64
	httpFailed       atomic.Uint64
}

// eventStats is what is known about one event name.
type eventStats struct {
	events [2]uint64             // server-to-client events seen, per side
	acks   [numAckResults]uint64 // ack comparisons of client emits of this name
	sample int                   // payload pairs kept
}

// stats is the comparison state shared by all sessions. Sessions touch it once per comparison or
// event, off the proxy's goroutines; a mutex is fine.
type stats struct {
	counters

	mu      sync.Mutex
	events  map[string]*eventStats
	acks    [numAckResults]uint64
	latency [2][]float64 // ring buffers, milliseconds
	latN    [2]int
	samples []Sample
	hooks   statsHooks
}

// statsHooks forward observations to Prometheus (nil funcs allowed).
type statsHooks struct {
	ack     func(result int)
	latency func(side int, d time.Duration)
}

func newStats() *stats {
	s := &stats{events: make(map[string]*eventStats)}
	for i := range s.latency {
		s.latency[i] = make([]float64, 0, latencyWindow)
	}
	return s
}

// eventLocked returns the stats of a name, folding names beyond the bound into otherEvent.
func (s *stats) eventLocked(name string) *eventStats {
	if e, ok := s.events[name]; ok {
		return e
	}
	if len(s.events) >= maxEventNames {
		name = otherEvent
		if e, ok := s.events[name]; ok {
			return e
		}
	}
	e := &eventStats{}
	s.events[name] = e
	return e
}

// event counts a server-to-client event on one side.
func (s *stats) event(side int, name string) {
	s.mu.Lock()
	s.eventLocked(name).events[side]++
	s.mu.Unlock()
}

// ackResult records one ack comparison. Latencies <= 0 are not recorded.
func (s *stats) ackResult(name string, result int, primaryLat, shadowLat time.Duration, sid string, primary, shadow []byte) {
	s.mu.Lock()
	e := s.eventLocked(name)
	e.acks[result]++
	s.acks[result]++
	if result == ackDifferent && len(s.samples) < maxSamples && e.sample < maxSamplesPerEvt {
		e.sample++
		// A sid is its session's bearer credential: the report names the session by its hash.
		s.samples = append(s.samples, Sample{Event: name, Session: proxy.SIDHash(sid), Primary: truncate(primary), Shadow: truncate(shadow)})
	}
	for side, d := range [2]time.Duration{primaryLat, shadowLat} {
		if d > 0 {
			s.observeLocked(side, d)
		}
	}
	s.mu.Unlock()
	if s.hooks.ack != nil {
		s.hooks.ack(result)
	}
	if s.hooks.latency != nil {
		if primaryLat > 0 {
			s.hooks.latency(sidePrimary, primaryLat)
		}
		if shadowLat > 0 {
			s.hooks.latency(sideShadow, shadowLat)
		}
	}
}

func (s *stats) observeLocked(side int, d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	if len(s.latency[side]) < latencyWindow {
		s.latency[side] = append(s.latency[side], ms)
	} else {
		s.latency[side][s.latN[side]%latencyWindow] = ms
	}
	s.latN[side]++
}

func truncate(b []byte) string {
	if len(b) <= sampleBytes {
		return string(b)
	}
	return string(b[:sampleBytes]) + "…"
}

// sameAck compares two ack payloads: equal bytes, or equal JSON values.
func sameAck(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) > 64<<10 || len(b) > 64<<10 {
		return false
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// Report is the JSON answer of GET /mirror/report.
type Report struct {
	Enabled   bool          `json:"enabled"`
	Sample    float64       `json:"sample"`
	Targets   []string      `json:"targets"`
	Sessions  SessionTotals `json:"sessions"`
	Packets   PacketTotals  `json:"packets"`
	HTTP      HTTPTotals    `json:"http"`
	Acks      AckTotals     `json:"acks"`
	Latency   LatencyReport `json:"latency_ms"`
	Divergent []EventReport `json:"divergent"` // events with different or missing acks, worst first
	Events    []EventReport `json:"events"`    // every tracked event name, by name
	Samples   []Sample      `json:"samples"`   // a few differing payload pairs, truncated
}

// SessionTotals counts sessions.
type SessionTotals struct {
	Mirrored       uint64 `json:"mirrored"`
	Skipped        uint64 `json:"skipped"`
	Active         int64  `json:"active"`
	ShadowFailures uint64 `json:"shadow_failures"`
}

// PacketTotals counts client-to-server packets.
type PacketTotals struct {
	Replayed     uint64 `json:"replayed"`
	Dropped      uint64 `json:"dropped"`
	Skipped      uint64 `json:"skipped_heartbeats"`
	DecodeErrors uint64 `json:"decode_errors"`
}

// HTTPTotals counts mirrored plain HTTP requests.
type HTTPTotals struct {
	Mirrored uint64 `json:"mirrored"`
	Dropped  uint64 `json:"dropped"`
	Failed   uint64 `json:"failed"`
}

// AckTotals counts ack comparisons.
type AckTotals struct {
	Same           uint64 `json:"same"`
	Different      uint64 `json:"different"`
	MissingShadow  uint64 `json:"missing_shadow"`
	MissingPrimary uint64 `json:"missing_primary"`
}

// Quantiles are latency quantiles in milliseconds over the last acks.
type Quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// LatencyReport gives ack latency per side: the proxy's view of the primary (client packet to
// primary ack) and the shadow's (replayed packet to shadow ack).
type LatencyReport struct {
	Primary Quantiles `json:"primary"`
	Shadow  Quantiles `json:"shadow"`
}

// EventReport is the comparison of one event name.
type EventReport struct {
	Event          string `json:"event"`
	Same           uint64 `json:"same"`
	Different      uint64 `json:"different"`
	MissingShadow  uint64 `json:"missing_shadow"`
	MissingPrimary uint64 `json:"missing_primary"`
	PrimaryEvents  uint64 `json:"primary_events"` // server-to-client events of this name from the primary
	ShadowEvents   uint64 `json:"shadow_events"`  // ... and from the shadow
}

func (e EventReport) divergence() uint64 {
	d := e.Different + e.MissingShadow + e.MissingPrimary
	if e.PrimaryEvents > e.ShadowEvents {
		d += e.PrimaryEvents - e.ShadowEvents
	} else {
		d += e.ShadowEvents - e.PrimaryEvents
	}
	return d
}

// Sample is one differing ack: the primary's and the shadow's payloads, truncated.
type Sample struct {
	Event   string `json:"event"`
	Session string `json:"session"` // the session's sid hash (proxy.SIDHash), never the sid
	Primary string `json:"primary"`
	Shadow  string `json:"shadow"`
}

// report fills the comparison part of a Report.
func (s *stats) report(r *Report) {
	c := &s.counters
	r.Sessions = SessionTotals{c.sessionsMirrored.Load(), c.sessionsSkipped.Load(), c.sessionsActive.Load(), c.shadowFailures.Load()}
	r.Packets = PacketTotals{c.packetsReplayed.Load(), c.packetsDropped.Load(), c.packetsSkipped.Load(), c.decodeErrors.Load()}
	r.HTTP = HTTPTotals{c.httpMirrored.Load(), c.httpDropped.Load(), c.httpFailed.Load()}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Acks = AckTotals{s.acks[ackSame], s.acks[ackDifferent], s.acks[ackMissingShadow], s.acks[ackMissingPrimary]}
	r.Latency = LatencyReport{quantiles(s.latency[sidePrimary]), quantiles(s.latency[sideShadow])}
	r.Events = make([]EventReport, 0, len(s.events))
	for name, e := range s.events {
		r.Events = append(r.Events, EventReport{
			Event: name, Same: e.acks[ackSame], Different: e.acks[ackDifferent],
			MissingShadow: e.acks[ackMissingShadow], MissingPrimary: e.acks[ackMissingPrimary],
			PrimaryEvents: e.events[sidePrimary], ShadowEvents: e.events[sideShadow],
		})
	}
	sort.Slice(r.Events, func(i, j int) bool { return r.Events[i].Event < r.Events[j].Event })
	r.Divergent = []EventReport{}
	for _, e := range r.Events {
		if e.divergence() > 0 {
			r.Divergent = append(r.Divergent, e)
		}
	}
	sort.SliceStable(r.Divergent, func(i, j int) bool { return r.Divergent[i].divergence() > r.Divergent[j].divergence() })
	if len(r.Divergent) > topDivergent {
		r.Divergent = r.Divergent[:topDivergent]
	}
	r.Samples = append([]Sample{}, s.samples...)
}

func quantiles(window []float64) Quantiles {
	if len(window) == 0 {
		return Quantiles{}
	}
	v := slices.Clone(window)
	slices.Sort(v)
	at := func(q float64) float64 {
		i := int(q*float64(len(v))+0.5) - 1
		return round3(v[min(max(i, 0), len(v)-1)])
	}
	return Quantiles{N: len(v), P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: round3(v[len(v)-1])}
}

func round3(x float64) float64 {
	v, _ := json.Number(fmt.Sprintf("%.3f", x)).Float64()
	return v
}
