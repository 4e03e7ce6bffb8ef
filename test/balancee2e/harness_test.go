package balancee2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "balancee2e",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client"},
	})
}

// testDir is this package's directory (sessions.js).
func testDir() string { return filepath.Join(testkit.Root(), "test", "balancee2e") }

// startBackends starts n Socket.IO v4 backends named b1..bn and waits until they listen.
func startBackends(t *testing.T, n int) []*testkit.Backend {
	t.Helper()
	return testkit.StartBackends(t, n, "b%d", "4")
}

// connectionTimes returns when each "connection" (a new Engine.IO session) of the backend was read.
func connectionTimes(b *testkit.Backend) []time.Time {
	var out []time.Time
	for _, l := range b.Lines() {
		if strings.Contains(l.Text, `"event":"connection"`) {
			out = append(out, l.At)
		}
	}
	return out
}

// proxyProc is a running sioproxy with its admin listener.
type proxyProc struct{ *testkit.Proxy }

// startProxy writes a config with backends b1..bn (weights[i], default 1) and the YAML of the
// balancer section (indented under "balancer:") and extra top-level YAML, starts sioproxy with it
// and waits until both listeners accept connections.
func startProxy(t *testing.T, bs []*testkit.Backend, weights []int, balancerYAML, extraYAML string) *proxyProc {
	t.Helper()
	addr, adminAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %q\nadmin:\n  listen: %q\nlog:\n  level: warn\nbackends:\n", addr, adminAddr)
	for i, b := range bs {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		fmt.Fprintf(&y, "  - id: %s\n    url: %s\n    weight: %d\n", b.Name, b.URL(), w)
	}
	y.WriteString("balancer:\n")
	for _, l := range strings.Split(strings.TrimSpace(balancerYAML), "\n") {
		y.WriteString("  " + l + "\n")
	}
	y.WriteString(extraYAML)
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// -listen and -admin-listen repeat the file's addresses (StartProxy waits on them).
	return &proxyProc{testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: adminAddr, Args: []string{"-config", cfg}})}
}

// backendView is one entry of the admin API's GET /backends.
type backendView struct {
	ID       string `json:"id"`
	Sessions int64  `json:"sessions"`
	Tunnels  int64  `json:"tunnels"`
	Ejected  bool   `json:"ejected"`
	Failures uint64 `json:"failures"`
}

// backends returns GET /backends of the admin API by backend id.
func (p *proxyProc) backends(t *testing.T) map[string]backendView {
	t.Helper()
	resp, err := http.Get(p.AdminURL("/backends"))
	if err != nil {
		t.Fatalf("GET /backends: %v", err)
	}
	defer resp.Body.Close()
	var vs []backendView
	if err := json.NewDecoder(resp.Body).Decode(&vs); err != nil {
		t.Fatalf("GET /backends: %v", err)
	}
	out := make(map[string]backendView, len(vs))
	for _, v := range vs {
		out[v.ID] = v
	}
	return out
}

// metric returns the sum of the samples of a metric whose label set contains every one of labels
// (e.g. `kind="handshake"`), from GET /metrics of the admin API.
func (p *proxyProc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(p.AdminURL("/metrics"))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		match := true
		for _, want := range labels {
			match = match && strings.Contains(l, want)
		}
		if !match {
			continue
		}
		if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}
