// Package admin is sioproxy's admin listener: backend state and drain control, session counts,
// health and readiness, Prometheus metrics, config reload and pprof. It is separate from the proxy
// listener and, by default, bound to loopback.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/health"
)

// Controller is what the admin API asks of the running process.
type Controller interface {
	// Drain stops new sessions to a backend; with deadline > 0 its remaining sessions are closed
	// after the deadline at rate per second, so clients reconnect elsewhere without a storm.
	Drain(id string, deadline time.Duration, rate float64) error
	// Undrain lets a backend take new sessions again.
	Undrain(id string) error
	// Reload re-reads the config file; an invalid one is refused and the running config kept.
	Reload() error
	// Ready reports whether the proxy can place new sessions, and why not.
	Ready() (bool, string)
	// SessionCount returns the live sessions the proxy knows for a backend ("" = all).
	SessionCount(backendID string) int
}

// ErrUnknownBackend is returned by a Controller for an id no source lists (404).
var ErrUnknownBackend = health.ErrUnknownBackend

// Options configure the admin handler.
type Options struct {
	Balancer   *balancer.Balancer
	Controller Controller
	Metrics    *Metrics
	Mirror     http.Handler           // serves /mirror/report, /mirror/enable, /mirror/disable (nil: no mirroring)
	Token      string                 // bearer token for every endpoint but /healthz ("" = none; then mutating endpoints are loopback only)
	Config     func() ([]byte, error) // the running config as YAML, secrets redacted (GET /config); nil: no endpoint
	Logger     *zap.Logger

	// The dashboard's history: a sample of every backend's sessions and of the incident counters
	// every SampleEvery (default 1 s), HistorySamples of them kept (default DefaultHistorySamples).
	// The sampler runs until Stop is closed (nil: for the life of the process).
	SampleEvery    time.Duration
	HistorySamples int
	Stop           <-chan struct{}
	Now            func() time.Time // clock (default time.Now)
}

// Handler returns the admin HTTP handler. It starts the dashboard's history sampler (see
// Options.Stop).
func Handler(o Options) http.Handler {
	a, h := newAPI(o)
	go a.runSampler()
	return h
}

// newAPI builds the handler; the caller runs the sampler.
func newAPI(o Options) (*api, http.Handler) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = time.Second
	}
	if o.HistorySamples <= 0 {
		o.HistorySamples = DefaultHistorySamples
	}
	a := &api{o: o, history: NewHistory(o.HistorySamples, DefaultHistoryBackends)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", a.auth(false, a.readyz))
	mux.HandleFunc("GET /backends", a.auth(false, a.backends))
	mux.HandleFunc("POST /backends/{id}/drain", a.auth(true, a.drain))
	mux.HandleFunc("POST /backends/{id}/undrain", a.auth(true, noQuery(a.undrain)))
	mux.HandleFunc("GET /sessions", a.auth(false, a.sessions))
	mux.HandleFunc("POST /reload", a.auth(true, noQuery(a.reload)))
	if o.Config != nil {
		mux.HandleFunc("GET /config", a.auth(false, a.config))
	}
	mux.HandleFunc("GET /overview", a.auth(false, a.overview))
	mux.Handle("GET /dashboard/", dashboardHandler())
	mux.Handle("GET /dashboard", http.RedirectHandler("/dashboard/", http.StatusMovedPermanently))
	if o.Mirror != nil {
		mux.HandleFunc("GET /mirror/report", a.auth(false, o.Mirror.ServeHTTP))
		mux.HandleFunc("POST /mirror/enable", a.auth(true, a.mirrorEnable)) // ?sample=F optional
		mux.HandleFunc("POST /mirror/disable", a.auth(true, noQuery(o.Mirror.ServeHTTP)))
	}
	if o.Metrics != nil {
		mux.Handle("GET /metrics", a.auth(false, promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{}).ServeHTTP))
	}
	mux.HandleFunc("/debug/pprof/", a.auth(true, pprof.Index))
	mux.HandleFunc("/debug/pprof/cmdline", a.auth(true, pprof.Cmdline))
	mux.HandleFunc("/debug/pprof/profile", a.auth(true, profileSeconds(pprof.Profile)))
	mux.HandleFunc("/debug/pprof/symbol", a.auth(true, pprof.Symbol))
	mux.HandleFunc("/debug/pprof/trace", a.auth(true, profileSeconds(pprof.Trace)))
	a.sample() // the dashboard has a first sample at once
	return a, mux
}

type api struct {
	o       Options
	history *History
}

// auth enforces the bearer token when one is configured; without one, mutating endpoints answer
// only loopback callers. Mutating endpoints refuse cross-site browser requests (see
// refuseCrossSite).
func (a *api) auth(mutating bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.o.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.o.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sioproxy"`)
				writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		} else if mutating && !isLoopback(r.RemoteAddr) {
			writeError(w, http.StatusForbidden, "mutating admin endpoints answer loopback callers only unless admin.token is set")
			return
		}
		if mutating {
			if status, why := refuseCrossSite(r, a.o.Token != ""); status != 0 {
				writeError(w, status, why)
				return
			}
		}
		h(w, r)
	}
}

// noQuery refuses any query parameter on an endpoint that takes none (a typo is not ignored).
func noQuery(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := strictQuery(r.URL.RawQuery); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		h(w, r)
	}
}

// profileSeconds bounds the seconds parameter of a pprof endpoint.
func profileSeconds(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := parseProfileQuery(r.URL.RawQuery); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		h(w, r)
	}
}

// mirrorEnable checks ?sample= before the mirror's own handler applies it.
func (a *api) mirrorEnable(w http.ResponseWriter, r *http.Request) {
	if _, _, err := ParseSampleQuery(r.URL.RawQuery); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.o.Mirror.ServeHTTP(w, r)
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// BackendView is one backend as GET /backends shows it.
type BackendView struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	State    string `json:"state"`
	Weight   int    `json:"weight"`
	Sessions int64  `json:"sessions"`
	Tunnels  int64  `json:"tunnels"`
	InFlight int64  `json:"in_flight"`
	Failures uint64 `json:"failures"`
	Ejected  bool   `json:"ejected"`
	Tag      string `json:"tag,omitempty"`
	Source   string `json:"source"`
}

func viewOf(be *balancer.Backend, now int64) BackendView {
	return BackendView{
		ID: be.ID, Address: be.Addr, State: be.State.String(), Weight: be.Weight,
		Sessions: be.Sessions.Load(), Tunnels: be.Tunnels.Load(), InFlight: be.InFlight.Load(),
		Failures: be.Failures.Load(), Ejected: be.Ejected(now), Tag: be.Tag, Source: be.Source,
	}
}

func (a *api) backends(w http.ResponseWriter, _ *http.Request) {
	now := a.o.Now().UnixNano()
	snap := a.o.Balancer.Snapshot()
	out := make([]BackendView, 0, len(snap.Backends))
	for _, be := range snap.Backends {
		out = append(out, viewOf(be, now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) drain(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	p, err := ParseDrainQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ok := map[string]any{"id": id, "state": "draining"}
	if p.Deadline > 0 {
		ok["deadline"], ok["rate"] = p.Deadline.String(), p.Rate
	}
	a.result(w, a.o.Controller.Drain(id, p.Deadline, p.Rate), ok)
}

func (a *api) undrain(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a.result(w, a.o.Controller.Undrain(id), map[string]any{"id": id, "state": "active"})
}

func (a *api) reload(w http.ResponseWriter, _ *http.Request) {
	a.result(w, a.o.Controller.Reload(), map[string]any{"reloaded": true})
}

func (a *api) config(w http.ResponseWriter, _ *http.Request) {
	out, err := a.o.Config()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(out)
}

func (a *api) result(w http.ResponseWriter, err error, ok any) {
	switch {
	case errors.Is(err, ErrUnknownBackend):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, ok)
	}
}

func (a *api) sessions(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("backend")
	if id != "" && a.o.Balancer.Snapshot().ByID(id) == nil {
		writeError(w, http.StatusNotFound, ErrUnknownBackend.Error()+": "+id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"backend": id, "sessions": a.o.Controller.SessionCount(id)})
}

func (a *api) readyz(w http.ResponseWriter, _ *http.Request) {
	if ok, why := a.o.Controller.Ready(); !ok {
		writeError(w, http.StatusServiceUnavailable, why)
		return
	}
	w.Write([]byte("ready\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
