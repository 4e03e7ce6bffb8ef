package testkit

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BackendReadyTimeout bounds the wait for the ready line of a backend started by StartBackends.
const BackendReadyTimeout = 30 * time.Second

// Backend is a running test/node/backend.js: a real Socket.IO server of major version 4 or 2.
type Backend struct {
	*Proc
	Name    string
	Version string
	Port    int
	TLS     bool // started with --tls-cert: the URL is https
}

// BackendEvent is one JSON line of backend.js (see its header for the events).
type BackendEvent struct {
	Event     string   `json:"event"`
	SID       string   `json:"sid"`
	Transport string   `json:"transport"`
	Reason    string   `json:"reason"`
	Requests  int      `json:"requests"`
	Code      int      `json:"code"`
	Message   string   `json:"message"`
	URL       string   `json:"url"`
	Headers   []string `json:"headers"` // raw header lines of the handshake (--log-headers)
}

// URL is the backend's base URL.
func (b *Backend) URL() string {
	if b.TLS {
		return fmt.Sprintf("https://127.0.0.1:%d", b.Port)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", b.Port)
}

// Addr is the backend's host:port.
func (b *Backend) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// LaunchBackend starts backend.js without waiting for it to listen: it binds a port of the
// kernel's choice (no race with other processes for a port picked in advance), which WaitReady
// learns from its ready line. extra are more of its arguments (--log-headers, --ping-interval MS,
// --tls-cert FILE, ...).
func LaunchBackend(t testing.TB, name, version string, extra ...string) *Backend {
	t.Helper()
	args := append([]string{"backend.js", "--port", "0", "--name", name, "--version", version}, extra...)
	p := Start(t, Command{Name: "backend " + name, Dir: NodeDir(), Bin: Node(), Args: args})
	return &Backend{Proc: p, Name: name, Version: version, TLS: slices.Contains(extra, "--tls-cert")}
}

// LaunchBackends launches n backends named fmt.Sprintf(format, i) for i = 1..n.
func LaunchBackends(t testing.TB, n int, format, version string, extra ...string) []*Backend {
	t.Helper()
	bs := make([]*Backend, n)
	for i := range bs {
		bs[i] = LaunchBackend(t, fmt.Sprintf(format, i+1), version, extra...)
	}
	return bs
}

// WaitReady waits until every backend has printed its ready line.
func WaitReady(t testing.TB, timeout time.Duration, bs ...*Backend) {
	t.Helper()
	for _, b := range bs {
		line, _, err := b.WaitLine(0, timeout, HasEvent("ready"))
		if err != nil {
			t.Fatalf("backend %s: %v\n%s", b.Name, err, b.Tail(20))
		}
		var ready struct {
			Port int `json:"port"`
		}
		if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.Port <= 0 {
			t.Fatalf("backend %s: ready line %q has no port", b.Name, line)
		}
		b.Port = ready.Port
	}
}

// StartBackends launches n backends (see LaunchBackends) and waits until they listen.
func StartBackends(t testing.TB, n int, format, version string, extra ...string) []*Backend {
	t.Helper()
	bs := LaunchBackends(t, n, format, version, extra...)
	WaitReady(t, BackendReadyTimeout, bs...)
	return bs
}

// Events decodes the backend's event lines from index from on; kind "" keeps every event.
func (b *Backend) Events(from int, kind string) []BackendEvent {
	var out []BackendEvent
	for _, e := range DecodeLines[BackendEvent](b.Texts(from)) {
		if e.Event != "" && (kind == "" || e.Event == kind) {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvent waits for an event of kind for sid, printed at line from or later.
func (b *Backend) WaitEvent(from int, timeout time.Duration, kind, sid string) (BackendEvent, error) {
	ev, _, err := WaitJSON(b.Proc, from, timeout, func(e BackendEvent) bool { return e.Event == kind && e.SID == sid })
	return ev, err
}

// BackendURLs returns the base URL of each backend.
func BackendURLs(bs []*Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.URL()
	}
	return out
}

// BackendNames returns the name of each backend.
func BackendNames(bs []*Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return out
}
