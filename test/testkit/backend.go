package testkit

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
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
	Host    string // listen address; "" = 127.0.0.1
	Port    int
	TLS     bool     // started with --tls-cert: the URL is https
	Extra   []string // further arguments of backend.js (Relaunch repeats them)
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
	scheme := "http://"
	if b.TLS {
		scheme = "https://"
	}
	return scheme + b.Addr()
}

// Addr is the backend's host:port.
func (b *Backend) Addr() string {
	host := b.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(b.Port))
}

// LaunchBackend starts backend.js without waiting for it to listen: it binds a port of the
// kernel's choice (no race with other processes for a port picked in advance), which WaitReady
// learns from its ready line. extra are further backend.js arguments (--log-headers,
// --ping-interval MS, --tls-cert FILE, ...).
func LaunchBackend(t testing.TB, name, version string, extra ...string) *Backend {
	t.Helper()
	args := append([]string{"backend.js", "--port", "0", "--name", name, "--version", version}, extra...)
	p := Start(t, Command{Name: "backend " + name, Dir: NodeDir(), Bin: Node(), Args: args})
	return &Backend{Proc: p, Name: name, Version: version, TLS: slices.Contains(extra, "--tls-cert"), Extra: extra}
}

// LaunchBackendOn starts backend.js on host:port without waiting for it to listen: for
// addresses of a network namespace the test made (InNetns), where the backends of one
// EndpointSlice share a port.
func LaunchBackendOn(t testing.TB, name, version, host string, port int) *Backend {
	t.Helper()
	p := Start(t, Command{Name: "backend " + name, Dir: NodeDir(), Bin: Node(),
		Args: []string{"backend.js", "--port", strconv.Itoa(port), "--host", host, "--name", name, "--version", version}})
	return &Backend{Proc: p, Name: name, Version: version, Host: host, Port: port}
}

// Relaunch starts the backend again, after it exited or was killed: same name, version, host and
// arguments, on the port it had (so that a Consul registration or a static URL still points at
// it), and waits until it listens. It returns the new process; b keeps the old one's output.
func (b *Backend) Relaunch(t testing.TB) *Backend {
	t.Helper()
	if !b.Exited() {
		t.Fatalf("backend %s: Relaunch while it runs", b.Name)
	}
	args := []string{"backend.js", "--port", strconv.Itoa(b.Port), "--name", b.Name, "--version", b.Version}
	if b.Host != "" {
		args = append(args, "--host", b.Host)
	}
	args = append(args, b.Extra...)
	p := Start(t, Command{Name: "backend " + b.Name, Dir: NodeDir(), Bin: Node(), Args: args})
	nb := &Backend{Proc: p, Name: b.Name, Version: b.Version, Host: b.Host, TLS: b.TLS, Extra: b.Extra}
	WaitReady(t, BackendReadyTimeout, nb)
	if nb.Port != b.Port {
		t.Fatalf("backend %s relaunched on port %d, not %d", b.Name, nb.Port, b.Port)
	}
	return nb
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
