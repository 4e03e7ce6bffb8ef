package upstream

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "upstream",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client", "socket.io-v2", "socket.io-client-v2"},
		Tools:       []string{"openssl"},
	})
}

// backendEntry is one backend of a generated config: id, URL and YAML lines under it (indented).
type backendEntry struct {
	id, url string
	extra   string
}

// startProxy writes a config with the backends and the YAML top (extra top-level sections), starts
// sioproxy (admin on) with env added, and waits until it listens.
func startProxy(t *testing.T, backends []backendEntry, top string, env ...string) *testkit.Proxy {
	t.Helper()
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %q\nadmin:\n  listen: %q\nlog:\n  level: info\nbackends:\n", addr, admin)
	for _, b := range backends {
		fmt.Fprintf(&y, "  - id: %s\n    url: %s\n", b.id, b.url)
		for _, l := range strings.Split(strings.TrimSpace(b.extra), "\n") {
			if l != "" {
				y.WriteString("    " + l + "\n")
			}
		}
	}
	y.WriteString(top)
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: admin, Args: []string{"-config", cfg}, Env: env})
}

// entries makes config entries of real backends.
func entries(bs []*testkit.Backend) []backendEntry {
	out := make([]backendEntry, len(bs))
	for i, b := range bs {
		out[i] = backendEntry{id: b.Name, url: b.URL()}
	}
	return out
}

// assertAlive checks that the proxy runs, answers its admin listener and logged no panic.
func assertAlive(t *testing.T, px *testkit.Proxy) {
	t.Helper()
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
	for _, l := range px.Texts(0) {
		if strings.Contains(l, "panic") {
			t.Errorf("the proxy logged a panic: %s", l)
			break
		}
	}
}
