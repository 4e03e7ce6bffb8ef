package consule2e

import (
	"encoding/json"
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

// lightest waits until /backends shows tunnels WebSocket tunnels (the held upgrade sessions have
// upgraded, loads are stable) and returns the backend with the least load (sessions + tunnels): the
// one the default p2c policy prefers, so that avoiding it is a visible change.
func lightest(t *testing.T, px *proxyProc, tunnels int64) string {
	t.Helper()
	start := time.Now()
	for {
		var n int64
		for _, b := range px.backends(t) {
			n += b.Tunnels
		}
		if n == tunnels {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("/backends shows %d tunnels 10 s after every session was acked, want %d", n, tunnels)
		}
		pause()
	}
	best, load := "", int64(-1)
	for _, b := range px.backends(t) {
		if l := b.Sessions + b.Tunnels; load < 0 || l < load {
			best, load = b.ID, l
		}
	}
	return best
}

// TestAdminDrain drains a backend through the admin API under real sessions: plain drain keeps its
// sessions and stops new ones; undrain reverts; drain with deadline=1s&rate=20 closes its sessions
// after the deadline at the rate, and their clients reconnect elsewhere without failures and without
// losing a single ack.
func TestAdminDrain(t *testing.T) {
	c := newCluster(t, 3)
	px := c.startProxy(t)
	runs := []*testkit.Hold{
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 30, Concurrency: 15}),
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 30, Concurrency: 15}),
	}
	for _, h := range runs {
		h.WaitProgress(t, "all_acked", 30*time.Second)
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/backends/nope/drain", http.StatusNotFound},
		{"/backends/nope/undrain", http.StatusNotFound},
		{"/backends/chat-1/drain?deadline=soon", http.StatusBadRequest},
		{"/backends/chat-1/drain?rate=0", http.StatusBadRequest},
	} {
		if code, body := px.post(t, tc.path); code != tc.code {
			t.Errorf("POST %s: %d %s, want %d", tc.path, code, body, tc.code)
		}
	}
	if got := px.states(t); !mapsEqual(got, c.allStates("active")) {
		t.Fatalf("refused admin calls changed /backends: %v", got)
	}

	// Plain drain: no new sessions, existing ones keep working.
	victim := lightest(t, px, 30)
	base := px.handshakes(t, 20)
	if countIn(base, victim) == 0 {
		t.Fatalf("baseline: no probe handshake reached %s, the least loaded backend: %v", victim, base)
	}
	t0 := time.Now()
	px.mustPost(t, "/backends/"+victim+"/drain")
	obs := px.observe(t, victim, 5*time.Second, drained)
	eff := checkAvoided(t, "admin drain", obs, victim, t0)
	t.Logf("PROPAGATION admin drain -> no new sessions: %v", eff.Round(time.Millisecond))
	sum := runClients(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 15})
	requireAllOK(t, sum, 15)
	if sum.ByBackend[victim] != 0 {
		t.Errorf("real sessions during the drain: %v, want none on %s", sum.ByBackend, victim)
	}
	mark := testkit.NowMs()
	for _, h := range runs {
		h.WaitAckedAfter(t, mark, 5*time.Second)
	}
	var held int64
	for _, b := range px.backends(t) {
		if b.ID == victim {
			held = b.Sessions
		}
	}
	if n := px.sessions(t, victim); int64(n) != held || n == 0 {
		t.Errorf("GET /sessions?backend=%s = %d, /backends says %d; want the same, > 0", victim, n, held)
	}

	// Undrain: active again.
	t1 := time.Now()
	px.mustPost(t, "/backends/"+victim+"/undrain")
	t.Logf("admin undrain -> /backends active: %v", (time.Since(t1) + px.waitStates(t, c.allStates("active"), 2*time.Second)).Round(time.Millisecond))

	// Drain with a deadline: after 1 s its sessions are closed, 20 per second.
	var before, sessions int64
	for _, b := range px.backends(t) {
		if b.ID == victim {
			before, sessions = b.Sessions+b.Tunnels, b.Sessions
		}
	}
	t2 := time.Now()
	drainAt := t2.UnixMilli()
	px.mustPost(t, "/backends/"+victim+"/drain?deadline=1s&rate=20")
	var firstClose, allClosed time.Time
	for allClosed.IsZero() && time.Since(t2) < 15*time.Second {
		for _, b := range px.backends(t) {
			if b.ID != victim {
				continue
			}
			now := time.Now()
			if b.Sessions+b.Tunnels < before && firstClose.IsZero() {
				firstClose = now
			}
			if b.Sessions == 0 && b.Tunnels == 0 {
				allClosed = now
			}
		}
		pause()
	}
	t.Logf("drain deadline=1s rate=20: %d closes (sessions + tunnels) on %s; first after %v, last after %v",
		before, victim, since(t2, firstClose), since(t2, allClosed))
	if firstClose.IsZero() || allClosed.IsZero() {
		t.Fatalf("%s: sessions not closed within 15 s of a drain with deadline=1s (first %v, all %v)", victim, since(t2, firstClose), since(t2, allClosed))
	}
	if d := firstClose.Sub(t2); d < 950*time.Millisecond {
		t.Errorf("first session closed %v after the drain, before the 1 s deadline", d)
	}
	// Each close waits 0.75 to 1.25 intervals of 1/rate. A close ends one session (an upgraded
	// one takes its tunnel with it, so the sessions, not sessions + tunnels, count the closes).
	if spread, least := allClosed.Sub(firstClose), time.Duration(sessions-1)*time.Second*3/(4*20)-100*time.Millisecond; spread < least {
		t.Errorf("%d closes spread over %v, want >= %v at 20 per second", sessions, spread, least)
	}
	closedAt := allClosed.UnixMilli()
	for _, h := range runs {
		h.WaitAckedAfter(t, closedAt, reconnectBudget+5*time.Second)
	}

	// Undrain: the emptied backend takes new real sessions again.
	px.mustPost(t, "/backends/"+victim+"/undrain")
	px.waitStates(t, c.allStates("active"), 2*time.Second)
	sum = runClients(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 15})
	requireAllOK(t, sum, 15)
	t.Logf("after undrain, 15 new sessions: %v", sum.ByBackend)
	if sum.ByBackend[victim] == 0 {
		t.Errorf("no new session on %s after undrain: %v", victim, sum.ByBackend)
	}

	var moved, movedPolling int
	lostAcks := map[string]int{}
	var slowest int64
	for _, h := range runs {
		sum := h.Stop(t)
		for _, s := range sum.Sessions {
			label := fmt.Sprintf("%s session %d", h.Opts.Mode, s.ID)
			if s.FirstBackend != victim {
				if len(s.Disconnects) > 0 || len(s.Reconnects) > 0 || len(s.Errors) > 0 || len(s.Backends) != 1 {
					t.Errorf("%s on %s (not drained) disturbed: disconnects %v, reconnects %v, errors %q", label, s.FirstBackend, s.Disconnects, s.Reconnects, s.Errors)
				}
				continue
			}
			moved++
			if h.Opts.Mode == "polling" {
				movedPolling++
			}
			// The drain deadline closes a polling session at the backend on the client's behalf
			// (an Engine.IO close packet, proxy/drain.go) before the client is sent elsewhere, so
			// no emit is in flight on a closed session: not one ack may be lost.
			for _, e := range s.Errors {
				if strings.Contains(e, "no ack within") {
					lostAcks[h.Opts.Mode]++
				}
			}
			if len(s.Errors) > 0 {
				t.Errorf("%s lost acks or failed while drained (reconnects %v): %q", label, s.Reconnects, s.Errors)
			}
			if len(s.Reconnects) != 1 || s.Reconnects[0].Backend == victim || s.Reconnects[0].Backend == "" {
				t.Errorf("%s: reconnects %v, want exactly one, to another backend", label, s.Reconnects)
				continue
			}
			back := s.Reconnects[0].At - drainAt
			slowest = max(slowest, back)
			if back < 1000 {
				t.Errorf("%s reconnected %d ms after a drain with a 1 s deadline", label, back)
			}
			if s.LastBackend == victim || s.LastAckAt <= s.Reconnects[0].At {
				t.Errorf("%s: last backend %s, last ack before its reconnect", label, s.LastBackend)
			}
		}
	}
	t.Logf("%d drained sessions (%d polling) reconnected elsewhere, the last %d ms after the drain call; lost acks by mode: %v (want none)",
		moved, movedPolling, slowest, lostAcks)
	if moved == 0 || int64(moved) > before {
		t.Errorf("%d sessions moved off %s, which had %d sessions + tunnels", moved, victim, before)
	}
	m := px.metrics(t)
	// The drain closes each polling session at its backend, so no client is ever told its session
	// id is unknown: it sees a close packet and reconnects.
	if v, _ := m.Value("sioproxy_sid_unknown_total"); v != 0 {
		t.Errorf("sioproxy_sid_unknown_total = %v after closing %d polling sessions, want 0", v, movedPolling)
	}
}

func countIn(ids []string, id string) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

// reloadConfig is a config file for the reload test; policy is the balancer policy.
func reloadConfig(consulAddr, policy string) string {
	return fmt.Sprintf(`# consule2e reload test
discovery:
  consul:
    address: %s
    services: [%s]
balancer:
  policy: %s
log:
  level: info
`, consulAddr, service, policy)
}

// TestReload reloads the config end to end: SIGHUP with a bad file keeps serving and logs the
// error; POST /reload with a bad file answers 400; a good file that changes balancer.policy to
// round_robin is applied (probe handshakes then rotate strictly) and counted in /metrics.
func TestReload(t *testing.T) {
	c := newCluster(t, 3)
	path := filepath.Join(t.TempDir(), "sioproxy.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadConfig(c.agent.Addr, "p2c"))
	px := launchProxy(t, "-config", path)
	c.px = px
	px.waitStates(t, c.allStates("active"), 15*time.Second)
	// reloads waits up to 2 s for the reload counter to reach want (the proxy logs a reload before
	// it counts it) and returns its value.
	reloads := func(result string, want float64) float64 {
		start := time.Now()
		for {
			v, _ := px.metrics(t).Value("sioproxy_reloads_total", "result", result)
			if v == want || time.Since(start) > 2*time.Second {
				return v
			}
			pause()
		}
	}

	// SIGHUP with an invalid policy: refused, logged with file and line, running config kept.
	write(reloadConfig(c.agent.Addr, "fastest"))
	mark := px.Len()
	if err := px.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line, _, err := px.WaitLine(mark, 5*time.Second, func(l string) bool { return strings.Contains(l, "reload refused") })
	if err != nil {
		t.Fatalf("no reload error logged after SIGHUP with a bad file: %v", err)
	}
	var logged struct {
		Level string `json:"level"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &logged); err != nil {
		t.Fatalf("proxy log line %q: %v", line, err)
	}
	t.Logf("SIGHUP with a bad file logged (%s): %s", logged.Level, logged.Error)
	if logged.Level != "error" || !strings.HasPrefix(logged.Error, path+":7: balancer.policy") {
		t.Errorf("reload error %q (level %s) does not start with %s:7: balancer.policy (the policy line)", logged.Error, logged.Level, path)
	}
	if px.Exited() {
		t.Fatalf("proxy exited after a bad reload: %v", px.Err())
	}
	if v := reloads("error", 1); v != 1 {
		t.Errorf(`sioproxy_reloads_total{result="error"} = %v, want 1`, v)
	}
	sum := runClients(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 15})
	requireAllOK(t, sum, 15)
	if got := px.states(t); !mapsEqual(got, c.allStates("active")) {
		t.Errorf("/backends after a bad reload: %v", got)
	}

	// POST /reload with broken YAML: 400 with the error, still counted.
	write("discovery:\n  consul: [\n")
	if code, body := px.post(t, "/reload"); code != http.StatusBadRequest || !strings.Contains(string(body), path) {
		t.Errorf("POST /reload with broken YAML: %d %s, want 400 naming the file", code, body)
	}
	if v := reloads("error", 2); v != 2 {
		t.Errorf(`sioproxy_reloads_total{result="error"} = %v, want 2`, v)
	}
	if v, _ := px.metrics(t).Value("sioproxy_reloads_total", "result", "ok"); v != 0 {
		t.Errorf(`sioproxy_reloads_total{result="ok"} = %v after two refused reloads, want 0`, v)
	}

	// Still p2c: with every backend idle, probe handshakes do not rotate strictly.
	before := px.handshakes(t, 30)
	if isRotation(before, 3) {
		t.Errorf("p2c placed 30 handshakes in a strict rotation %v: the policy test below proves nothing", before)
	}

	// SIGHUP with a good file that switches to round_robin: applied.
	write(reloadConfig(c.agent.Addr, "round_robin"))
	mark = px.Len()
	if err := px.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line, _, err = px.WaitLine(mark, 5*time.Second, func(l string) bool { return strings.Contains(l, `"reloaded"`) })
	if err != nil {
		t.Fatalf("no reload logged after SIGHUP with a good file: %v", err)
	}
	if !strings.Contains(line, "balancer") {
		t.Errorf("reload log %q does not name the changed balancer section", line)
	}
	if v := reloads("ok", 1); v != 1 {
		t.Errorf(`sioproxy_reloads_total{result="ok"} = %v, want 1`, v)
	}
	after := px.handshakes(t, 30)
	t.Logf("placements before the reload (p2c): %v", before)
	t.Logf("placements after the reload (round_robin): %v", after)
	if !isRotation(after, 3) {
		t.Errorf("after switching to round_robin, 30 handshakes were placed %v, want a strict rotation over 3 backends", after)
	}
	if got := px.states(t); !mapsEqual(got, c.allStates("active")) {
		t.Errorf("/backends after the good reload: %v", got)
	}
	sum = runClients(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 15})
	requireAllOK(t, sum, 15)
	if v, _ := px.metrics(t).Value("sioproxy_sid_unknown_total"); v != 0 {
		t.Errorf("sioproxy_sid_unknown_total = %v after the reloads, want 0", v)
	}
}

// isRotation reports whether ids cycle strictly through k distinct values.
func isRotation(ids []string, k int) bool {
	if len(ids) < k {
		return false
	}
	seen := map[string]bool{}
	for _, id := range ids[:k] {
		seen[id] = true
	}
	if len(seen) != k {
		return false
	}
	for i := k; i < len(ids); i++ {
		if ids[i] != ids[i-k] {
			return false
		}
	}
	return true
}
