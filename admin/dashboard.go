package admin

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"time"

	"sioproxy/balancer"
)

// The dashboard is a page of our own (HTML, CSS and a script, no third-party file), embedded in the
// binary and served under /dashboard/ on the admin listener. It reads GET /overview every second
// and calls the admin API's own endpoints for its actions, with the token the operator types in.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardCSP allows the page nothing but its own files and same-origin requests, and no framing.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

func dashboardHandler() http.Handler {
	sub, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic(err) // the embedded directory is part of the build
	}
	files := http.StripPrefix("/dashboard/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", dashboardCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// DashboardURL is the dashboard's address on an admin listener address ("" when the admin
// listener is off). An unspecified host (":9090", "0.0.0.0:9090") is shown as 127.0.0.1.
func DashboardURL(adminListen string) string {
	if adminListen == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(adminListen)
	if err != nil {
		return "http://" + adminListen + "/dashboard/"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/dashboard/"
}

// RateWindow is the time over which GET /overview computes its rates.
const RateWindow = 10 * time.Second

// Overview is the answer of GET /overview: everything the dashboard shows, in one document.
type Overview struct {
	Time     int64           `json:"time"`      // unix ms
	Interval int64           `json:"sample_ms"` // time between history samples
	Backends []BackendStatus `json:"backends"`
	Totals   Totals          `json:"totals"`
	Rates    Rates           `json:"rates"`  // over the last RateWindow
	Mirror   bool            `json:"mirror"` // a mirror is configured: /mirror/report and its actions answer
	History  HistoryView     `json:"history"`
}

// BackendStatus is a backend as GET /backends shows it, plus what the dashboard tells apart.
type BackendStatus struct {
	BackendView
	// Status is one of active, draining, ejected (passively, for a cooldown) and slow_start (ramping
	// up after joining or returning), in that order of precedence after draining.
	Status string `json:"status"`
	// Share is the fraction of its weight the backend gets now: below 1 during slow start.
	Share float64 `json:"share"`
	// EjectedMs is how long the passive ejection still lasts (0 when not ejected).
	EjectedMs int64 `json:"ejected_ms,omitempty"`
}

// Totals are the process's counters: live ones summed over backends, and event totals.
type Totals struct {
	Sessions int64 `json:"sessions"`
	Tunnels  int64 `json:"tunnels"`
	InFlight int64 `json:"in_flight"`
	Counts
}

// statusOf classifies a backend of snap at now (unix nanos).
func statusOf(snap *balancer.Snapshot, be *balancer.Backend, now int64) BackendStatus {
	s := BackendStatus{BackendView: viewOf(be, now), Status: "active", Share: 1}
	if be.Weight > 0 {
		s.Share = float64(snap.EffectiveWeight(be, now)) / float64(int64(be.Weight)*1024)
	}
	if s.Ejected {
		s.EjectedMs = (be.EjectedUntil() - now) / int64(time.Millisecond)
	}
	switch {
	case be.State == balancer.Draining:
		s.Status = "draining"
	case s.Ejected:
		s.Status = "ejected"
	case s.Share < 1:
		s.Status = "slow_start"
	}
	return s
}

func (a *api) overview(w http.ResponseWriter, r *http.Request) {
	since, err := ParseSinceQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := a.o.Now()
	snap := a.o.Balancer.Snapshot()
	ov := Overview{
		Time: now.UnixMilli(), Interval: a.o.SampleEvery.Milliseconds(),
		Backends: make([]BackendStatus, 0, len(snap.Backends)),
		Totals:   Totals{Counts: a.o.Metrics.Counts()},
		Rates:    a.history.Rates(RateWindow),
		Mirror:   a.o.Mirror != nil,
		History:  a.history.Since(since),
	}
	for _, be := range snap.Backends {
		s := statusOf(snap, be, now.UnixNano())
		ov.Totals.Sessions += s.Sessions
		ov.Totals.Tunnels += s.Tunnels
		ov.Totals.InFlight += s.InFlight
		ov.Backends = append(ov.Backends, s)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ov) // compact: the dashboard asks every second
}

// sample records one history sample.
func (a *api) sample() {
	snap := a.o.Balancer.Snapshot()
	counts := make([]BackendCount, len(snap.Backends))
	for i, be := range snap.Backends {
		counts[i] = BackendCount{ID: be.ID, Sessions: be.Sessions.Load()}
	}
	a.history.Record(a.o.Now(), counts, a.o.Metrics.Counts())
}

// runSampler samples every SampleEvery until Stop is closed.
func (a *api) runSampler() {
	t := time.NewTicker(a.o.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-a.o.Stop:
			return
		case <-t.C:
			a.sample()
		}
	}
}
