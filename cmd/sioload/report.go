package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Snapshot is the live state of a run, for the progress line.
type Snapshot struct {
	Elapsed time.Duration
	Phase   Phase
	Started int64
	OK      int64
	Failed  int64
	Alive   int64
	Dropped int64
	Emits   uint64
	Acks    uint64
	Pending int64
	P50     time.Duration
	P99     time.Duration
	Errors  uint64
}

// snapshot reads the counters.
func (g *generator) snapshot(start time.Time) Snapshot {
	var errs uint64
	for _, v := range g.errors() {
		errs += v
	}
	return Snapshot{
		Elapsed: g.now().Sub(start),
		Phase:   g.phase.Load().(Phase),
		Started: g.started.Load(),
		OK:      g.ok.Load(),
		Failed:  g.failed.Load(),
		Alive:   g.alive.Load(),
		Dropped: g.dropped.Load(),
		Emits:   g.emits.Load(),
		Acks:    g.acks.Load(),
		Pending: g.pending.Load(),
		P50:     time.Duration(g.latency.Quantile(0.5)),
		P99:     time.Duration(g.latency.Quantile(0.99)),
		Errors:  errs,
	}
}

// Latency summarises a histogram, in milliseconds.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// latencyOf reads h (nanoseconds) into a Latency.
func latencyOf(h *histogram) Latency {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Latency{
		Count: h.Count(),
		P50:   ms(h.Quantile(0.5)),
		P90:   ms(h.Quantile(0.9)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
		Mean:  h.Mean() / 1e6,
	}
}

// SessionCounts are the session outcomes of a run.
type SessionCounts struct {
	Target  int   `json:"target"`
	Started int64 `json:"started"`
	OK      int64 `json:"ok"`      // connected (handshake, Socket.IO connect, upgrade if asked)
	Failed  int64 `json:"failed"`  // never connected
	Dropped int64 `json:"dropped"` // connected, then ended on an error before the close phase
	Held    int64 `json:"held"`    // still connected when the close phase began
}

// EmitCounts are the emit outcomes of a run.
type EmitCounts struct {
	Sent        uint64  `json:"sent"`
	Acked       uint64  `json:"acked"`
	PerSec      float64 `json:"per_s"`        // sent / (start of ramp .. end of run)
	SteadyPerS  float64 `json:"steady_per_s"` // sent per second after the ramp
	AckedPerSec float64 `json:"acked_per_s"`
}

// Summary is the final report of a run.
type Summary struct {
	URL              string            `json:"url"`
	Path             string            `json:"path"`
	EIO              int               `json:"eio"`
	Mode             string            `json:"mode"`
	Sessions         SessionCounts     `json:"sessions"`
	Transports       map[string]int64  `json:"transports"`
	RampSeconds      float64           `json:"ramp_s"`
	RunSeconds       float64           `json:"run_s"`
	HandshakesPerSec float64           `json:"handshakes_per_s"`
	Handshake        Latency           `json:"handshake_ms"`
	Emits            EmitCounts        `json:"emits"`
	Ack              Latency           `json:"ack_ms"`
	Errors           map[string]uint64 `json:"errors"`
}

// TotalErrors adds up the error counts.
func (s *Summary) TotalErrors() uint64 {
	var n uint64
	for _, v := range s.Errors {
		n += v
	}
	return n
}

// summary reads the counters after the drain.
func (g *generator) summary(start, rampEnd, emitEnd time.Time, emitsAtRampEnd uint64) Summary {
	s := Summary{
		URL:  g.cfg.URL,
		Path: g.cfg.Path,
		EIO:  g.cfg.EIO,
		Mode: g.cfg.Mode.String(),
		Sessions: SessionCounts{
			Target:  g.cfg.Sessions,
			Started: g.started.Load(),
			OK:      g.ok.Load(),
			Failed:  g.failed.Load(),
			Dropped: g.dropped.Load(),
		},
		Transports:  map[string]int64{"polling": g.polling.Load(), "websocket": g.websocket.Load()},
		RampSeconds: rampEnd.Sub(start).Seconds(),
		RunSeconds:  emitEnd.Sub(start).Seconds(),
		Handshake:   latencyOf(g.handshake),
		Ack:         latencyOf(g.latency),
	}
	if last := g.lastDialNs.Load(); last > 0 && s.Sessions.OK > 0 {
		if d := time.Unix(0, last).Sub(start).Seconds(); d > 0 {
			s.HandshakesPerSec = float64(s.Sessions.OK) / d
		}
	}
	s.Emits.Sent, s.Emits.Acked = g.emits.Load(), g.acks.Load()
	if s.RunSeconds > 0 {
		s.Emits.PerSec = float64(s.Emits.Sent) / s.RunSeconds
		s.Emits.AckedPerSec = float64(s.Emits.Acked) / s.RunSeconds
	}
	if d := emitEnd.Sub(rampEnd).Seconds(); d > 0 {
		s.Emits.SteadyPerS = float64(s.Emits.Sent-emitsAtRampEnd) / d
	}
	return s
}

// writeJSON prints s as indented JSON.
func writeJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// writeText prints s for a person.
func writeText(w io.Writer, s Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "sioload: %s, EIO %d, %s%s\n", s.Mode, s.EIO, s.URL, s.Path)
	fmt.Fprintf(&b, "sessions     %d target, %d ok, %d failed, %d dropped, %d held at the end (polling %d, websocket %d)\n",
		s.Sessions.Target, s.Sessions.OK, s.Sessions.Failed, s.Sessions.Dropped, s.Sessions.Held,
		s.Transports["polling"], s.Transports["websocket"])
	fmt.Fprintf(&b, "handshakes   %.1f/s over a %.2fs ramp; latency %s\n", s.HandshakesPerSec, s.RampSeconds, fmtLatency(s.Handshake))
	fmt.Fprintf(&b, "emits        %d sent, %d acked in %.2fs: %.1f/s overall, %.1f/s after the ramp\n",
		s.Emits.Sent, s.Emits.Acked, s.RunSeconds, s.Emits.PerSec, s.Emits.SteadyPerS)
	fmt.Fprintf(&b, "ack latency  %s\n", fmtLatency(s.Ack))
	if len(s.Errors) == 0 {
		b.WriteString("errors       none\n")
	} else {
		fmt.Fprintf(&b, "errors       %d\n", s.TotalErrors())
		for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
			fmt.Fprintf(&b, "  %-24s %d\n", k, s.Errors[k])
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtLatency formats the percentiles of l.
func fmtLatency(l Latency) string {
	if l.Count == 0 {
		return "n/a (no samples)"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s",
		fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max), fmtMs(l.Mean))
}

// fmtMs formats milliseconds with 3 significant digits.
func fmtMs(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0fms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.2fms", ms)
}

// progressLine renders one live line; prev is the previous snapshot (for the emit rate).
func progressLine(s, prev Snapshot) string {
	rate := 0.0
	if dt := (s.Elapsed - prev.Elapsed).Seconds(); dt > 0 {
		rate = float64(s.Emits-prev.Emits) / dt
	}
	return fmt.Sprintf("%6.1fs %-5s | sessions %d/%d up, %d failed, %d dropped | emits %d (%.0f/s), %d pending | ack p50 %s p99 %s | errors %d",
		s.Elapsed.Seconds(), s.Phase, s.Alive, s.Started, s.Failed, s.Dropped, s.Emits, rate, s.Pending,
		fmtMs(float64(s.P50)/1e6), fmtMs(float64(s.P99)/1e6), s.Errors)
}
