package hostile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "hostile",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client"},
	})
}

// Addresses of the cases: clients connect from untrustedIP unless a case says otherwise; the proxy
// believes the X-Forwarded-For of trustedIP only.
const (
	untrustedIP = "127.0.0.1"
	trustedIP   = "127.0.0.2"
	hostName    = "hostile.test"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

// cluster is three real Socket.IO v4 servers, shared by the cases of one test; each case gets a
// proxy of its own so that nothing one case does (an ejection, a poisoned pool, a crash) is seen by
// the next.
type cluster struct {
	backends []*testkit.Backend
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{backends: testkit.StartBackends(t, 3, "h%d", "4", "--log-headers")}
}

// names is the set of backend names (what GET /__name answers).
func (c *cluster) names() map[string]bool {
	m := map[string]bool{}
	for _, b := range c.backends {
		m[b.Name] = true
	}
	return m
}

// proxyConfig is the YAML of a proxy in front of the cluster; extra is appended under "proxy:".
func (c *cluster) proxyConfig(addr, admin, extraProxy string) string {
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %q\nadmin:\n  listen: %q\nlog:\n  level: info\nbackends:\n", addr, admin)
	for _, b := range c.backends {
		fmt.Fprintf(&y, "  - id: %s\n    url: %s\n", b.Name, b.URL())
	}
	fmt.Fprintf(&y, "proxy:\n  trusted_proxies: [%s/32]\n", trustedIP)
	for _, l := range strings.Split(strings.TrimSpace(extraProxy), "\n") {
		if l != "" {
			y.WriteString("  " + l + "\n")
		}
	}
	return y.String()
}

// startProxy starts a fresh proxy in front of the cluster and waits until it listens.
func (c *cluster) startProxy(t *testing.T, extraProxy string) *testkit.Proxy {
	t.Helper()
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte(c.proxyConfig(addr, admin, extraProxy)), 0o644); err != nil {
		t.Fatal(err)
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: admin, Args: []string{"-config", cfg}})
}

// backendStats is GET /__stats of a backend, straight to the backend.
type backendStats struct {
	Live int `json:"live"`
}

func liveSessions(t *testing.T, b *testkit.Backend) int {
	t.Helper()
	resp, err := httpClient.Get(b.URL() + "/__stats")
	if err != nil {
		t.Fatalf("backend %s: GET /__stats: %v", b.Name, err)
	}
	defer resp.Body.Close()
	var s backendStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("backend %s: GET /__stats: %v", b.Name, err)
	}
	return s.Live
}

// closeAll closes every live session at every backend, so that a failing case leaves nothing behind.
func (c *cluster) closeAll(t *testing.T) {
	t.Helper()
	for _, b := range c.backends {
		resp, err := httpClient.Post(b.URL()+"/__close-all", "text/plain", nil)
		if err != nil {
			t.Errorf("backend %s: POST /__close-all: %v", b.Name, err)
			continue
		}
		resp.Body.Close()
	}
}

// backendSaw reports whether any backend logged an Engine.IO connection error whose URL contains s:
// a request carrying s reached a backend.
func (c *cluster) backendSaw(s string) string {
	for _, b := range c.backends {
		for _, e := range b.Events(0, "connection_error") {
			if strings.Contains(e.URL, s) {
				u := strings.ReplaceAll(e.URL, s, "#"+proxy.SIDHash(s)) // s may sit under an encoded key
				return fmt.Sprintf("backend %s answered %d %q to %s", b.Name, e.Code, e.Message, testkit.RedactSIDs(u))
			}
		}
	}
	return ""
}

// handshakeHeaders returns the raw header lines the backend that issued rawSID saw on its handshake.
func (c *cluster) handshakeHeaders(t *testing.T, rawSID string) []string {
	t.Helper()
	for _, b := range c.backends {
		for _, e := range b.Events(0, "connection") {
			if e.SID == rawSID {
				return e.Headers
			}
		}
	}
	var ev []string
	ok := testkit.WaitFor(5*time.Second, func() bool {
		for _, b := range c.backends {
			for _, e := range b.Events(0, "connection") {
				if e.SID == rawSID {
					ev = e.Headers
					return true
				}
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no backend logged the handshake of sid_hash %s", proxy.SIDHash(rawSID))
	}
	return ev
}

// rawSID strips the proxy's tag ("TAGC.") from a sid the client saw.
func rawSID(sid string) string {
	if i := strings.IndexByte(sid, '.'); i == 4 {
		return sid[i+1:]
	}
	return sid
}

// isTagged reports whether a client-side sid carries a tag.
func isTagged(sid string) bool { return strings.IndexByte(sid, '.') == 4 && len(sid) > 5 }

// newSession opens a polling session through the proxy and returns the tagged sid.
func newSession(t *testing.T, px *testkit.Proxy) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	sid, err := c.Handshake(ctx)
	if err != nil {
		t.Fatalf("session through the proxy: %v", err)
	}
	return sid
}

// closeSession ends a session through the proxy with a close packet.
func closeSession(t *testing.T, px *testkit.Proxy, sid string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	if err := c.Close(ctx, sid); err != nil {
		t.Errorf("closing session sid_hash %s through the proxy: %v", proxy.SIDHash(sid), err)
	}
}

// headerLines returns the values of header name (any case) in raw header lines [name, value, ...].
func headerLines(raw []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(raw); i += 2 {
		if strings.EqualFold(raw[i], name) {
			out = append(out, raw[i+1])
		}
	}
	return out
}

// echoed is GET /__headers of backend.js: the request as the backend received it.
type echoed struct {
	Method     string   `json:"method"`
	URL        string   `json:"url"`
	RawHeaders []string `json:"rawHeaders"`
}

func readAll(r io.Reader) string {
	b, _ := io.ReadAll(r)
	return string(b)
}
