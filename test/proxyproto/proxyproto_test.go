package proxyproto

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "proxyproto",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client", "socket.io-v2", "socket.io-client-v2"},
		Tools:       []string{"haproxy"},
		Hint:        "apt-get install haproxy; cd test/node && npm ci (or ./test/run.sh e2e)",
	})
}

// haproxySource is the address HAProxy connects to sioproxy from: the only trusted PROXY peer.
const haproxySource = "127.0.0.1"

// startProxy starts sioproxy trusting PROXY headers from haproxySource only, with extra YAML
// appended at the top level.
func startProxy(t *testing.T, bs []*testkit.Backend, extra string) *testkit.Proxy {
	t.Helper()
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %q\nproxy_protocol_from: [%s/32]\nadmin:\n  listen: %q\nlog:\n  level: info\nbackends:\n", addr, haproxySource, admin)
	for _, b := range bs {
		fmt.Fprintf(&y, "  - id: %s\n    url: %s\n", b.Name, b.URL())
	}
	y.WriteString(extra)
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: admin, Args: []string{"-config", cfg}})
}

// startHAProxy runs HAProxy in mode tcp in front of upstream, sending the PROXY header (sendProxy:
// "send-proxy" or "send-proxy-v2") from haproxySource, and returns its address.
func startHAProxy(t *testing.T, upstream, sendProxy string) string {
	t.Helper()
	addr := testkit.FreeAddr(t)
	cfg := fmt.Sprintf(`global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend fe
    bind %s
    default_backend sioproxy
backend sioproxy
    server px %s %s source %s
`, addr, upstream, sendProxy, haproxySource)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testkit.Start(t, testkit.Command{Name: "haproxy " + sendProxy, Bin: testkit.Tool("haproxy"), Args: []string{"-db", "-f", path}})
	testkit.WaitTCP(t, p, addr, testkit.ProxyReadyTimeout)
	return addr
}

func headerValue(raw []string, name string) string {
	for i := 0; i+1 < len(raw); i += 2 {
		if strings.EqualFold(raw[i], name) {
			return raw[i+1]
		}
	}
	return ""
}

func failures(sum testkit.ClientSummary) []string {
	var out []string
	for _, s := range sum.Sessions {
		if !s.OK && len(out) < 5 {
			out = append(out, fmt.Sprintf("#%d %s", s.ID, strings.Join(s.Errors, "; ")))
		}
	}
	return out
}

// TestBehindHAProxy: through HAProxy with send-proxy and with send-proxy-v2, real socket.io
// sessions from clients bound to 127.0.0.2..4 work in every mode (v4, and v2 upgrading), and every
// handshake the backends see carries the client's own address in X-Forwarded-For and X-Real-IP,
// never HAProxy's.
func TestBehindHAProxy(t *testing.T) {
	const n = 15
	for _, send := range []string{"send-proxy", "send-proxy-v2"} {
		t.Run(send, func(t *testing.T) {
			bs4 := testkit.StartBackends(t, 2, "pp4-%d", "4", "--log-headers")
			bs2 := testkit.StartBackends(t, 1, "pp2-%d", "2", "--log-headers")
			runs := []struct {
				version, mode, local string
				bs                   []*testkit.Backend
			}{
				{"4", "polling", "127.0.0.2", bs4},
				{"4", "upgrade", "127.0.0.3", bs4},
				{"4", "websocket", "127.0.0.4", bs4},
				{"2", "upgrade", "127.0.0.5", bs2},
			}
			for _, r := range runs {
				px := startProxy(t, r.bs, "")
				front := startHAProxy(t, px.Addr, send)
				marks := make([]int, len(r.bs))
				for i, b := range r.bs {
					marks[i] = b.Len()
				}
				sum := testkit.RunClients(t, testkit.ClientOpts{URL: "http://" + front, Mode: r.mode, Version: r.version, N: n,
					Emits: 3, Concurrency: 5, TimeoutMs: 20000, LocalAddress: r.local})
				if sum.OK != n {
					t.Errorf("v%s %s from %s: %d of %d sessions ok: %v", r.version, r.mode, r.local, sum.OK, n, failures(sum))
				}
				seen := 0
				for i, b := range r.bs {
					for _, e := range b.Events(marks[i], "connection") {
						seen++
						xff, real := headerValue(e.Headers, "X-Forwarded-For"), headerValue(e.Headers, "X-Real-Ip")
						if xff != r.local || real != r.local {
							t.Errorf("v%s %s: backend %s saw X-Forwarded-For %q, X-Real-IP %q; want the client's %s", r.version, r.mode, b.Name, xff, real, r.local)
							break
						}
					}
				}
				if seen < n {
					t.Errorf("v%s %s: backends logged %d handshakes, want %d", r.version, r.mode, seen, n)
				}
				for id, s := range px.Backends(t) {
					if s.Failures != 0 {
						t.Errorf("backend %s: %d failures", id, s.Failures)
					}
				}
				if err := px.Healthy(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestHashUsesProxyAddress: with the hash policy on the client IP, the backend of each client
// address through HAProxy (PROXY v2) is the one it gets when it connects directly, and the
// addresses spread over more than one backend; had the proxy hashed HAProxy's address, every
// session through it would land on one backend.
func TestHashUsesProxyAddress(t *testing.T) {
	bs := testkit.StartBackends(t, 3, "hash%d", "4")
	// A large epsilon: the load bound never moves a key off its first choice in this small run.
	px := startProxy(t, bs, "balancer:\n  policy: hash\n  epsilon: 100\n  slow_start: 0s\n  hash_key:\n    source: ip\n")
	front := startHAProxy(t, px.Addr, "send-proxy-v2")
	locals := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14", "127.0.0.15", "127.0.0.16"}
	backendOf := func(url, local string) string {
		sum := testkit.RunClients(t, testkit.ClientOpts{URL: url, Mode: "polling", N: 2, Emits: 1, Concurrency: 2,
			TimeoutMs: 15000, LocalAddress: local})
		if sum.OK != 2 || len(sum.ByBackend) != 1 {
			t.Errorf("%s from %s: %d of 2 ok, on backends %v; want both on one", url, local, sum.OK, sum.ByBackend)
		}
		for name := range sum.ByBackend {
			return name
		}
		return ""
	}
	used := map[string]bool{}
	for _, local := range locals {
		via, direct := backendOf("http://"+front, local), backendOf(px.URL(), local)
		if via != direct {
			t.Errorf("client %s: backend %s through HAProxy, %s directly; the hash key is not the PROXY address", local, via, direct)
		}
		used[via] = true
	}
	t.Logf("client addresses per backend through HAProxy: %v", used)
	if len(used) < 2 {
		t.Errorf("%d client addresses through HAProxy all landed on %v: hashed on HAProxy's address?", len(locals), used)
	}
}

// TestUntrustedProxyHeaderRefused: a PROXY header (v1 or v2) from a peer that is not trusted is
// refused (closed without an answer), a trusted peer without one is refused too, both are counted,
// and a plain request from the untrusted peer is served under its own address.
func TestUntrustedProxyHeaderRefused(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "untrusted%d", "4", "--log-headers")
	px := startProxy(t, bs, "")
	// The readiness probe (a connection from 127.0.0.1 that sends nothing) counts too: count from here.
	before, _ := px.Metric(t, "sioproxy_conns_refused_total", `reason="proxy_header"`)
	v2 := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x01\x7f\x00\x00\x01\x15\xb3\x1f\x90")
	cases := []struct {
		name, local string
		prefix      []byte
	}{
		{"untrusted v1", "127.0.0.9", []byte("PROXY TCP4 198.51.100.1 127.0.0.1 5555 8080\r\n")},
		{"untrusted v2", "127.0.0.9", v2},
		{"trusted without header", haproxySource, nil},
	}
	for _, c := range cases {
		rc, err := testkit.DialRawFrom(c.local, px.Addr)
		if err != nil {
			t.Fatal(err)
		}
		msg := append(append([]byte{}, c.prefix...), "GET /__headers HTTP/1.1\r\nHost: pp.test\r\n\r\n"...)
		if err := rc.Send(msg, 3*time.Second); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, err := rc.WaitClosed(5 * time.Second); err != nil || len(got) > 0 {
			t.Errorf("%s: got %q, %v; want the connection closed without an answer", c.name, got, err)
		}
		rc.Close()
	}
	if n, _ := px.Metric(t, "sioproxy_conns_refused_total", `reason="proxy_header"`); n-before != float64(len(cases)) {
		t.Errorf("sioproxy_conns_refused_total{reason=proxy_header} grew by %v, want %d", n-before, len(cases))
	}
	rc, err := testkit.DialRawFrom("127.0.0.9", px.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := rc.Send([]byte("GET /__headers HTTP/1.1\r\nHost: pp.test\r\n\r\n"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	r, err := rc.ReadResponse(http.MethodGet, 5*time.Second)
	if err != nil || r.Status != http.StatusOK || !strings.Contains(string(r.Body), "127.0.0.9") || strings.Contains(string(r.Body), "198.51.100.1") {
		t.Errorf("a plain request from the untrusted peer: %v %v", r, err)
	}
	for id, s := range px.Backends(t) {
		if s.Failures != 0 {
			t.Errorf("backend %s: %d failures", id, s.Failures)
		}
	}
}

// TestPerIPLimitUsesProxyAddress: with max_conns_per_ip 2, the third connection of one client
// address through HAProxy is closed, while another client address behind the same HAProxy is
// served: the limit counts the PROXY source, not HAProxy.
func TestPerIPLimitUsesProxyAddress(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "perip%d", "4")
	px := startProxy(t, bs, "proxy:\n  max_conns_per_ip: 2\n")
	front := startHAProxy(t, px.Addr, "send-proxy")
	get := func(local string) (*testkit.RawConn, error) {
		rc, err := testkit.DialRawFrom(local, front)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { rc.Close() })
		if err := rc.Send([]byte("GET /__name HTTP/1.1\r\nHost: pp.test\r\n\r\n"), 3*time.Second); err != nil {
			return rc, err
		}
		r, err := rc.ReadResponse(http.MethodGet, 5*time.Second)
		if err == nil && r.Status != http.StatusOK {
			err = fmt.Errorf("answer %s", r)
		}
		return rc, err
	}
	for i := 0; i < 2; i++ {
		if _, err := get("127.0.0.21"); err != nil {
			t.Fatalf("connection %d of 127.0.0.21: %v", i+1, err)
		}
	}
	if _, err := get("127.0.0.21"); err == nil {
		t.Errorf("third connection of 127.0.0.21 through HAProxy was served over max_conns_per_ip 2")
	}
	if _, err := get("127.0.0.22"); err != nil {
		t.Errorf("another client behind the same HAProxy: %v", err)
	}
	if n, _ := px.Metric(t, "sioproxy_conns_refused_total", `reason="per_ip"`); n != 1 {
		t.Errorf("sioproxy_conns_refused_total{reason=per_ip} = %v, want 1", n)
	}
}
