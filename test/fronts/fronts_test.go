package fronts

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "fronts",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client", "socket.io-v2", "socket.io-client-v2"},
		Tools:       []string{"haproxy", "nginx"},
		Hint:        "install the peers and the node modules: apt-get install haproxy nginx; cd test/node && npm ci (or ./test/run.sh e2e)",
	})
}

// sessionsPerRun is how many real client sessions each (front, version, mode) runs.
const sessionsPerRun = 100

// front starts a reverse proxy in front of the sioproxy at upstream and returns its base URL.
type front struct {
	name  string
	start func(t *testing.T, upstream string) string
}

var fronts = []front{{"haproxy", startHAProxy}, {"nginx", startNginx}}

// TestFronts runs real Socket.IO sessions through HAProxy and nginx in front of sioproxy, for
// socket.io 4 and 2, in every mode. Each run gets a fresh sioproxy and a fresh front, so that one
// mode's failures (an ejected backend, a poisoned connection) are not seen by the next.
func TestFronts(t *testing.T) {
	for _, version := range []string{"4", "2"} {
		t.Run("socket.io@"+version, func(t *testing.T) {
			bs := testkit.StartBackends(t, 3, "v"+version+"b%d", version)
			for _, f := range fronts {
				for _, mode := range []string{"polling", "upgrade", "websocket"} {
					t.Run(f.name+"/"+mode, func(t *testing.T) { runThrough(t, f, bs, version, mode) })
				}
			}
		})
	}
}

func runThrough(t *testing.T, f front, bs []*testkit.Backend, version, mode string) {
	px := startProxy(t, bs)
	url := f.start(t, px.Addr)
	marks := make([]int, len(bs))
	for i, b := range bs {
		marks[i] = b.Len()
	}
	sum := testkit.RunClients(t, testkit.ClientOpts{URL: url, Mode: mode, Version: version, N: sessionsPerRun, Emits: 3, TimeoutMs: 15000})

	if sum.OK != sessionsPerRun {
		t.Errorf("%d of %d sessions through %s ok; errors: %s", sum.OK, sessionsPerRun, f.name, errorSummary(sum))
	}
	wantTransport := "websocket"
	if mode == "polling" {
		wantTransport = "polling"
	}
	wrong := 0
	for _, s := range sum.Sessions {
		if len(s.Backends) > 1 {
			t.Errorf("session %d saw backends %v: not sticky", s.ID, s.Backends)
		}
		if s.Transport != "" && s.Transport != wantTransport {
			wrong++
		}
	}
	if wrong > 0 {
		t.Errorf("%d sessions ended on another transport than %s", wrong, wantTransport)
	}
	// Spread: every backend a fair share of the sessions (p2c over 3 backends).
	for _, b := range bs {
		if n := sum.ByBackend[b.Name]; n < sessionsPerRun/6 {
			t.Errorf("backend %s got %d of %d sessions (by backend %v): not spread", b.Name, n, sessionsPerRun, sum.ByBackend)
		}
	}
	for id, s := range px.Backends(t) {
		if s.Failures != 0 || s.Ejected {
			t.Errorf("backend %s: %d failures, ejected %v, behind %s", id, s.Failures, s.Ejected, f.name)
		}
	}
	for i, b := range bs {
		issued := map[string]bool{}
		for _, e := range b.Events(marks[i], "connection") {
			issued[e.SID] = true
		}
		for _, e := range b.Events(marks[i], "connection_error") {
			if e.Code == 1 && !issued[e.SID] {
				t.Errorf("backend %s got a request of a session it does not own: sid_hash %s (%s)", b.Name, proxy.SIDHash(e.SID), testkit.RedactSIDs(e.URL))
			}
		}
	}
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// errorSummary counts the sessions' errors by message.
func errorSummary(sum testkit.ClientSummary) string {
	counts := map[string]int{}
	for _, s := range sum.Sessions {
		for _, e := range s.Errors {
			counts[e]++
		}
		if !s.OK && len(s.Errors) == 0 {
			counts[fmt.Sprintf("backends %v", s.Backends)]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return counts[keys[i]] > counts[keys[j]] })
	var b strings.Builder
	for i, k := range keys {
		if i == 6 {
			fmt.Fprintf(&b, "; ... %d more kinds", len(keys)-i)
			break
		}
		fmt.Fprintf(&b, "%dx %q; ", counts[k], k)
	}
	return b.String()
}

// startProxy starts sioproxy (admin on) in front of bs.
func startProxy(t *testing.T, bs []*testkit.Backend) *testkit.Proxy {
	t.Helper()
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %q\nadmin:\n  listen: %q\nlog:\n  level: warn\nbackends:\n", addr, admin)
	for _, b := range bs {
		fmt.Fprintf(&y, "  - id: %s\n    url: %s\n", b.Name, b.URL())
	}
	// The fronts connect from loopback: their X-Forwarded-For is believed.
	y.WriteString("proxy:\n  trusted_proxies: [127.0.0.0/8]\n")
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: admin, Args: []string{"-config", cfg}})
}

// startHAProxy runs HAProxy in HTTP mode (HTX: it sends header names in lower case) in the
// foreground, in front of upstream.
func startHAProxy(t *testing.T, upstream string) string {
	t.Helper()
	addr := testkit.FreeAddr(t)
	cfg := fmt.Sprintf(`global
    maxconn 4000
defaults
    mode http
    option forwardfor
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout tunnel 120s
    timeout http-keep-alive 10s
frontend fe
    bind %s
    default_backend sioproxy
backend sioproxy
    server px %s
`, addr, upstream)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testkit.Start(t, testkit.Command{Name: "haproxy", Bin: testkit.Tool("haproxy"), Args: []string{"-db", "-f", path}})
	testkit.WaitTCP(t, p, addr, testkit.ProxyReadyTimeout)
	return "http://" + addr
}

// startNginx runs nginx in the foreground (daemon off, its own prefix and error log in the test's
// directory) as a WebSocket-aware reverse proxy in front of upstream, as its documentation says.
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	addr := testkit.FreeAddr(t)
	dir := t.TempDir()
	for _, d := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers may then use the test's directories
	}
	conf := fmt.Sprintf(`%[1]s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
    upstream sioproxy { server %[3]s; keepalive 32; }
    server {
        listen %[4]s;
        location / {
            proxy_pass http://sioproxy;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 120s;
            proxy_buffering off;
        }
    }
}
`, user, dir, upstream, addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := testkit.Start(t, testkit.Command{Name: "nginx", Bin: testkit.Tool("nginx"),
		Args: []string{"-p", dir, "-c", path, "-e", filepath.Join(dir, "logs", "error.log")}})
	testkit.WaitTCP(t, p, addr, testkit.ProxyReadyTimeout)
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "logs", "error.log")); err == nil && len(b) > 0 {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("nginx error.log (last lines):\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
			}
		}
	})
	return "http://" + addr
}
