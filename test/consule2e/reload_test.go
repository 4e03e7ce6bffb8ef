package consule2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// reloadFile is the config of TestReloadUnderLiveSessions; each step changes some of its fields.
type reloadFile struct {
	consulAddr string
	services   []string
	statics    []*testkit.Backend
	policy     string // default p2c
	level      string // default info
	slowStart  string // default 0s
	settings   bool   // the proxy and sticky settings of step 1
	tail       string // raw YAML appended
}

func (f reloadFile) yaml() string {
	or := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: %s\nbalancer:\n  policy: %s\n  slow_start: %s\n  remove_grace: 20s\n",
		or(f.level, "info"), or(f.policy, "p2c"), or(f.slowStart, "0s"))
	if len(f.statics) > 0 {
		b.WriteString("backends:\n")
		for _, s := range f.statics {
			fmt.Fprintf(&b, "  - id: %s\n    url: %s\n", s.Name, s.URL())
		}
	}
	fmt.Fprintf(&b, "discovery:\n  consul:\n    address: %s\n    services: [%s]\n    deregister_grace: 60s\n",
		f.consulAddr, strings.Join(f.services, ", "))
	if f.settings {
		b.WriteString("proxy:\n  upstream_timeout: 2m\n  dial_timeout: 2s\n  max_conns_per_backend: 5000\n  tunnel_idle_timeout: 100s\n" +
			"  max_body_bytes: 2000000\n  shutdown_timeout: 20s\n  trusted_proxies: [10.0.0.0/8]\nsticky:\n  session_ttl: 70s\n  ttl_margin: 10s\n")
	}
	b.WriteString(f.tail)
	return b.String()
}

// TestReloadUnderLiveSessions applies a reload of each kind of key under live real Socket.IO sessions
// (polling, upgraded and WebSocket-only), with SIGHUP and POST /reload in turn: settings, client
// settings, the policy, the log level, static backends added and removed, a Consul service added and
// removed, the Consul address changed (to another spelling of the same agent, to an unreachable one
// and back), then a bad file and a restart-only key. After each step the change shows in GET /config,
// /backends or /metrics; the process stays up; no session fails or misses an ack.
func TestReloadUnderLiveSessions(t *testing.T) {
	c := newCluster(t, 3)
	extra := testkit.StartBackends(t, 1, "chat2-%d", "4")
	statics := testkit.StartBackends(t, 2, "static-%d", "4")
	registerService(t, c, extra[0], "chat2")

	path := filepath.Join(t.TempDir(), "sioproxy.yaml")
	f := reloadFile{consulAddr: c.agent.Addr, services: []string{service}, statics: statics[:1]}
	write := func(f reloadFile) {
		t.Helper()
		if err := os.WriteFile(path, []byte(f.yaml()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(f)
	px := launchProxy(t, "-config", path)
	c.px = px
	want := c.allStates("active")
	want["static-1"] = "active"
	px.waitStates(t, want, 15*time.Second)

	holds := []*testkit.Hold{
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 20, Concurrency: 10, HoldMs: 300000}),
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 15, Concurrency: 10, HoldMs: 300000}),
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "websocket", N: 15, Concurrency: 10, HoldMs: 300000}),
	}
	for _, h := range holds {
		h.WaitProgress(t, "all_acked", 60*time.Second)
	}

	okReloads := 0
	reload := func(step string, viaSignal bool) {
		t.Helper()
		if viaSignal {
			mark := px.Len()
			if err := px.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			if _, _, err := px.WaitLine(mark, 5*time.Second, func(l string) bool {
				return strings.Contains(l, `"reloaded"`) || strings.Contains(l, "reload refused")
			}); err != nil {
				t.Fatalf("%s: no reload logged after SIGHUP: %v", step, err)
			}
		} else if code, body := px.post(t, "/reload"); code != http.StatusOK {
			t.Fatalf("%s: POST /reload: %d %s", step, code, body)
		}
		okReloads++
		if !testkit.WaitFor(2*time.Second, func() bool {
			v, _ := px.metrics(t).Value("sioproxy_reloads_total", "result", "ok")
			return v == float64(okReloads)
		}) {
			t.Fatalf("%s: sioproxy_reloads_total{result=\"ok\"} is not %d", step, okReloads)
		}
		if px.Exited() {
			t.Fatalf("%s: the proxy exited: %v", step, px.Err())
		}
	}
	config := func() string {
		t.Helper()
		code, body := px.get(t, "/config")
		if code != http.StatusOK {
			t.Fatalf("GET /config: %d %s", code, body)
		}
		return string(body)
	}
	checkAcked := func(step string) {
		t.Helper()
		mark := testkit.NowMs()
		for _, h := range holds {
			h.WaitAckedAfter(t, mark, 10*time.Second)
		}
	}

	// 1. Settings, client settings; then the policy and the log level.
	f.settings = true
	write(f)
	reload("settings", true)
	got := config()
	for _, want := range []string{"upstream_timeout: 2m0s", "dial_timeout: 2s", "max_conns_per_backend: 5000", "tunnel_idle_timeout: 1m40s",
		"max_body_bytes: 2000000", "shutdown_timeout: 20s", "10.0.0.0/8", "session_ttl: 1m10s", "ttl_margin: 10s"} {
		if !strings.Contains(got, want) {
			t.Errorf("GET /config after the settings reload lacks %q", want)
		}
	}
	checkAcked("settings")
	f.policy, f.level = "round_robin", "debug"
	write(f)
	reload("policy and log level", false)
	got = config()
	for _, want := range []string{"policy: round_robin", "level: debug"} {
		if !strings.Contains(got, want) {
			t.Errorf("GET /config after the policy reload lacks %q", want)
		}
	}
	if rot := px.handshakes(t, 12); !isRotation(rot, len(want)) {
		t.Errorf("after switching to round_robin, handshakes were placed %v, want a strict rotation over %d backends", rot, len(want))
	}
	checkAcked("policy")

	// 2. A static backend added, then the first one removed (it drains for remove_grace).
	f.statics = statics
	write(f)
	reload("static backend added", true)
	want["static-2"] = "active"
	px.waitStates(t, want, 5*time.Second)
	f.statics = statics[1:]
	write(f)
	reload("static backend removed", false)
	want["static-1"] = "draining"
	px.waitStates(t, want, 5*time.Second)
	checkAcked("static backends")

	// 3. A Consul service added, then the first one removed (its instances drain for
	// deregister_grace, keeping their sessions), then added back.
	f.services = []string{service, "chat2"}
	write(f)
	reload("consul service added", true)
	want["chat2-1"] = "active"
	px.waitStates(t, want, 10*time.Second)
	f.services = []string{"chat2"}
	write(f)
	reload("consul service removed", false)
	for _, b := range c.bs {
		want[b.Name] = "draining"
	}
	px.waitStates(t, want, 10*time.Second)
	checkAcked("consul service removed")
	f.services = []string{service, "chat2"}
	write(f)
	reload("consul service back", true)
	for _, b := range c.bs {
		want[b.Name] = "active"
	}
	px.waitStates(t, want, 10*time.Second)

	// 4. The Consul address changed: another spelling of the same agent (nothing is lost), an
	// unreachable one (the last known set is kept, sioproxy_consul_healthy 0), and back.
	healthy := func(v float64) bool {
		got, _ := px.metrics(t).Value("sioproxy_consul_healthy")
		return got == v
	}
	f.consulAddr = "http://" + c.agent.Addr
	write(f)
	reload("consul address respelled", false)
	px.waitStates(t, want, 5*time.Second)
	if !testkit.WaitFor(5*time.Second, func() bool { return healthy(1) }) {
		t.Error("sioproxy_consul_healthy is not 1 with the respelled address")
	}
	f.consulAddr = "127.0.0.1:1"
	write(f)
	reload("consul unreachable", true)
	if !testkit.WaitFor(10*time.Second, func() bool { return healthy(0) }) {
		t.Error("sioproxy_consul_healthy did not drop to 0 with an unreachable Consul address")
	}
	if got := px.states(t); !mapsEqual(got, want) {
		t.Errorf("/backends with Consul unreachable: %v, want the last known set %v", got, want)
	}
	checkAcked("consul unreachable")
	f.consulAddr = c.agent.Addr
	write(f)
	reload("consul back", false)
	if !testkit.WaitFor(10*time.Second, func() bool { return healthy(1) }) {
		t.Error("sioproxy_consul_healthy did not come back to 1")
	}
	px.waitStates(t, want, 5*time.Second)

	// 5. A bad file and a restart-only key: refused, nothing changes, the process stays up.
	f.tail = "proxy: [\n"
	write(f)
	if code, body := px.post(t, "/reload"); code != http.StatusBadRequest || !strings.Contains(string(body), path) {
		t.Errorf("reload of a broken file: %d %s, want 400 naming the file", code, body)
	}
	f.tail, f.slowStart = "", "5s"
	write(f)
	if code, body := px.post(t, "/reload"); code != http.StatusBadRequest || !strings.Contains(string(body), "balancer.slow_start") {
		t.Errorf("reload of a restart-only key: %d %s, want 400 naming balancer.slow_start", code, body)
	}
	if v, _ := px.metrics(t).Value("sioproxy_config_last_reload_successful"); v != 0 {
		t.Errorf("sioproxy_config_last_reload_successful = %v after a refused reload, want 0", v)
	}
	if got := px.states(t); !mapsEqual(got, want) {
		t.Errorf("/backends after refused reloads: %v, want %v", got, want)
	}
	checkAcked("refused reloads")

	for _, h := range holds {
		sum := h.Stop(t)
		for _, s := range sum.Sessions {
			if !s.OK || len(s.Disconnects) > 0 {
				t.Errorf("%s session %d: ok=%v errors %v disconnects %v", h.Opts.Mode, s.ID, s.OK, s.Errors, s.Disconnects)
			}
		}
	}
	if v, _ := px.metrics(t).Value("sioproxy_sid_unknown_total"); v != 0 {
		t.Errorf("sioproxy_sid_unknown_total = %v after the reloads, want 0", v)
	}
}
