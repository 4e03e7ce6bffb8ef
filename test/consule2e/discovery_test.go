package consule2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// TestConsulSpreadAndMetrics: three socket.io@4 backends registered in Consul with HTTP checks, a
// proxy started with -consul-addr/-consul-service only. Real sessions spread over all three, and
// /metrics agrees with what the clients saw: handshakes per backend, no unknown sid, live sessions
// and tunnels per backend.
func TestConsulSpreadAndMetrics(t *testing.T) {
	c := newCluster(t, 3)
	px := c.startProxy(t)
	ports := map[string]int{}
	for _, b := range c.bs {
		ports[b.Name] = b.Port
	}
	for _, b := range px.backends(t) {
		if b.Source != "consul" || b.Weight != 1 || b.Address != fmt.Sprintf("127.0.0.1:%d", ports[b.ID]) {
			t.Errorf("backend %+v: want source consul, weight 1, address 127.0.0.1:%d", b, ports[b.ID])
		}
	}
	if code, body := px.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	m := px.metrics(t)
	if v, ok := m.Value("sioproxy_consul_healthy"); !ok || v != 1 {
		t.Errorf("sioproxy_consul_healthy = %v (present %v), want 1", v, ok)
	}

	// Held sessions: the per-backend gauges must equal what the clients hold.
	holdP := startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 30})
	holdU := startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 15})
	holdP.WaitProgress(t, "all_acked", 30*time.Second)
	holdU.WaitProgress(t, "all_acked", 30*time.Second)
	// An upgrade completes shortly after the first ack: wait for the 15 tunnels.
	start := time.Now()
	for m.Sum("sioproxy_backend_tunnels") != 15 && time.Since(start) < 10*time.Second {
		pause()
		m = px.metrics(t)
	}
	live := map[string]float64{}
	tunnels := map[string]float64{}
	heldHandshakes := map[string]float64{}
	for _, h := range []*testkit.Hold{holdP, holdU} {
		sum := h.Stop(t)
		for _, s := range sum.Sessions {
			if !s.OK || len(s.Backends) != 1 || len(s.Reconnects) > 0 {
				t.Errorf("held %s session %d: ok %v, backends %v, reconnects %v, errors %q", h.Opts.Mode, s.ID, s.OK, s.Backends, s.Reconnects, s.Errors)
				continue
			}
			live[s.FirstBackend]++
			heldHandshakes[s.FirstBackend]++
			if h.Opts.Mode == "upgrade" {
				tunnels[s.FirstBackend]++
			}
		}
	}
	gotLive := m.ByLabel("sioproxy_backend_sessions", "backend")
	gotTunnels := m.ByLabel("sioproxy_backend_tunnels", "backend")
	gotHS := m.ByLabel("sioproxy_handshakes_total", "backend")
	t.Logf("held 45 sessions: clients saw %v (tunnels %v); /metrics sessions %v, tunnels %v, handshakes %v",
		live, tunnels, gotLive, gotTunnels, gotHS)
	for _, id := range c.names() {
		if gotLive[id] != live[id] || gotTunnels[id] != tunnels[id] || gotHS[id] != heldHandshakes[id] {
			t.Errorf("%s: /metrics sessions %v tunnels %v handshakes %v, clients hold %v sessions, %v over WebSocket, %v handshakes",
				id, gotLive[id], gotTunnels[id], gotHS[id], live[id], tunnels[id], heldHandshakes[id])
		}
		if live[id] == 0 {
			t.Errorf("no held session on %s: %v", id, live)
		}
	}

	// Short sessions: 45 polling and 45 upgrading.
	seen := map[string]int{}
	for _, mode := range []string{"polling", "upgrade"} {
		sum := runClients(t, testkit.ClientOpts{URL: px.URL(), Mode: mode, N: 45})
		requireAllOK(t, sum, 45)
		for id, n := range sum.ByBackend {
			seen[id] += n
		}
	}
	t.Logf("90 short sessions per backend: %v", seen)
	for _, id := range c.names() {
		if seen[id] < 90/6 {
			t.Errorf("backend %s got %d of 90 sessions, want >= 15 (spread over all 3): %v", id, seen[id], seen)
		}
	}

	m = px.metrics(t)
	gotHS = m.ByLabel("sioproxy_handshakes_total", "backend")
	for _, id := range c.names() {
		if want := heldHandshakes[id] + float64(seen[id]); gotHS[id] != want {
			t.Errorf("sioproxy_handshakes_total{backend=%q} = %v, clients made %v sessions there", id, gotHS[id], want)
		}
	}
	if v, _ := m.Value("sioproxy_sid_unknown_total"); v != 0 {
		t.Errorf("sioproxy_sid_unknown_total = %v, want 0", v)
	}
	if v, _ := m.Value("sioproxy_requests_total", "kind", "handshake", "code", "2xx"); v != 135 {
		t.Errorf(`sioproxy_requests_total{kind="handshake",code="2xx"} = %v, want 135 (45 held + 90 short sessions)`, v)
	}
	if v := m.Sum("sioproxy_requests_total", "code", "5xx"); v != 0 {
		t.Errorf("sioproxy_requests_total 5xx = %v, want 0", v)
	}
	for _, id := range c.names() {
		if v, _ := m.Value("sioproxy_backend_active", "backend", id); v != 1 {
			t.Errorf("sioproxy_backend_active{backend=%q} = %v, want 1", id, v)
		}
	}
}

// Budgets of the discovery issue.
const (
	drainBudget     = 2 * time.Second // maintenance or a failed check -> no new sessions
	returnBudget    = 3 * time.Second // back from maintenance -> new sessions again
	reconnectBudget = 5 * time.Second // sessions of a dead backend -> connected to a survivor
	criticalBudget  = 3 * time.Second // dead backend -> its Consul check critical (interval 1 s)
	settle          = 1500 * time.Millisecond
)

// drained reports whether the observations show the victim draining for settle already.
func drained(obs []observation) bool {
	d := firstState(obs, "draining")
	return !d.IsZero() && obs[len(obs)-1].at.Sub(d) >= settle
}

// checkAvoided asserts that the victim was shown draining and that new handshakes avoided it within
// drainBudget of t0, and returns the effective delay.
func checkAvoided(t *testing.T, what string, obs []observation, victim string, t0 time.Time) time.Duration {
	t.Helper()
	drainAt, avoidAt := firstState(obs, "draining"), avoidingSince(obs, victim)
	after := 0
	for _, o := range obs {
		if !avoidAt.IsZero() && !o.probeAt.Before(avoidAt) {
			after++
		}
		if o.err != nil {
			t.Errorf("%s: probe handshake at +%v failed: %v", what, since(t0, o.at), o.err)
		}
	}
	t.Logf("%s: /backends shows %s draining after %v; new handshakes avoid it from %v on (%d probes after that, first probe at +%v; probes per backend %v)",
		what, victim, since(t0, drainAt), since(t0, avoidAt), after, since(t0, obs[0].probeAt), countOn(obs))
	if drainAt.IsZero() || avoidAt.IsZero() {
		t.Fatalf("%s: %s never shown draining (%v) or never avoided (%v) within the observation", what, victim, since(t0, drainAt), since(t0, avoidAt))
	}
	eff := max(drainAt.Sub(t0), avoidAt.Sub(t0))
	if eff > drainBudget {
		t.Errorf("%s: %s took %v to stop getting new sessions, want <= %v", what, victim, eff.Round(time.Millisecond), drainBudget)
	}
	if after < 20 {
		t.Errorf("%s: only %d probes after %s was avoided; the observation is too short", what, after, victim)
	}
	return eff
}

// TestConsulMaintenance puts a backend in Consul maintenance under live sessions: within 2 s it
// takes no new session while its own sessions keep getting acks; back from maintenance it takes
// new sessions within 3 s.
func TestConsulMaintenance(t *testing.T) {
	c := newCluster(t, 3)
	px := c.startProxy(t)
	runs := []*testkit.Hold{
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 24, Concurrency: 12}),
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 24, Concurrency: 12}),
	}
	for _, h := range runs {
		h.WaitProgress(t, "all_acked", 30*time.Second)
	}
	// The least loaded backend is the one p2c prefers: before the maintenance it gets handshakes.
	victim := lightest(t, px, 24)
	if base := px.handshakes(t, 20); countIn(base, victim) == 0 {
		t.Fatalf("baseline: no probe handshake reached %s, the least loaded backend: %v", victim, base)
	}

	t0 := time.Now()
	if err := c.consul.Agent().EnableServiceMaintenance(victim, "consule2e"); err != nil {
		t.Fatalf("enable maintenance: %v", err)
	}
	obs := px.observe(t, victim, 8*time.Second, drained)
	eff := checkAvoided(t, "maintenance on", obs, victim, t0)
	t.Logf("PROPAGATION maintenance on -> no new sessions: %v", eff.Round(time.Millisecond))
	m := px.metrics(t)
	if v, _ := m.Value("sioproxy_backend_active", "backend", victim); v != 0 {
		t.Errorf("sioproxy_backend_active{backend=%q} = %v in maintenance, want 0", victim, v)
	}
	hsVictim, _ := m.Value("sioproxy_handshakes_total", "backend", victim)

	// Its existing sessions keep working: every session is acked after the drain took effect.
	mark := testkit.NowMs()
	for _, h := range runs {
		h.WaitAckedAfter(t, mark, 5*time.Second)
	}
	// New real sessions avoid it (they also load the others, see below).
	holdB := startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 30, Concurrency: 15})
	holdB.WaitProgress(t, "all_acked", 30*time.Second)
	if v, _ := px.metrics(t).Value("sioproxy_handshakes_total", "backend", victim); v != hsVictim {
		t.Errorf("%s got %v new handshakes in maintenance", victim, v-hsVictim)
	}

	onVictim := 0
	for _, h := range runs {
		sum := h.Stop(t)
		for _, s := range sum.Sessions {
			if len(s.Disconnects) > 0 || len(s.Reconnects) > 0 || len(s.Errors) > 0 || len(s.Backends) != 1 {
				t.Errorf("%s session %d on %s disturbed by the maintenance: disconnects %v, reconnects %v, errors %q, backends %v",
					h.Opts.Mode, s.ID, s.FirstBackend, s.Disconnects, s.Reconnects, s.Errors, s.Backends)
			}
			if s.FirstBackend == victim {
				onVictim++
				if s.LastAckAt <= mark || s.AcksByBackend[victim] < 2 {
					t.Errorf("%s session %d on %s: last ack %d ms after the drain, acks %v", h.Opts.Mode, s.ID, victim, s.LastAckAt-mark, s.AcksByBackend)
				}
			}
		}
	}
	t.Logf("%d held sessions on %s kept getting acks through the maintenance", onVictim, victim)
	if onVictim < 4 {
		t.Errorf("only %d of 48 held sessions were on %s: placement did not spread them", onVictim, victim)
	}
	start := time.Now()
	for px.sessions(t, victim) != 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s still has %d sessions in the table 5 s after its clients closed", victim, px.sessions(t, victim))
		}
		pause()
	}

	// Back from maintenance: the empty backend takes new sessions again (slow start weighs it at
	// 10% at first; against 30 live sessions on the others it still wins the comparisons).
	t1 := time.Now()
	if err := c.consul.Agent().DisableServiceMaintenance(victim); err != nil {
		t.Fatalf("disable maintenance: %v", err)
	}
	obs = px.observe(t, victim, 8*time.Second, func(obs []observation) bool {
		return !firstState(obs, "active").IsZero() && !firstOn(obs, victim).IsZero()
	})
	activeAt, onAt := firstState(obs, "active"), firstOn(obs, victim)
	t.Logf("maintenance off: /backends shows %s active after %v; first new session on it after %v (probes %v)",
		victim, since(t1, activeAt), since(t1, onAt), countOn(obs))
	t.Logf("PROPAGATION maintenance off -> new sessions: %v", since(t1, onAt))
	if onAt.IsZero() || onAt.Sub(t1) > returnBudget {
		t.Errorf("%s got its first new session %v after maintenance ended, want <= %v", victim, since(t1, onAt), returnBudget)
	}
	sumB := holdB.Stop(t)
	if sumB.ByBackend[victim] != 0 || sumB.Connected != 30 {
		t.Errorf("sessions opened in maintenance: %d connected, per backend %v; want 30, none on %s", sumB.Connected, sumB.ByBackend, victim)
	}
}

// TestConsulBackendKilled SIGKILLs a backend under live sessions: its check goes critical, its
// sessions reconnect to the others within 5 s, and it gets no new session.
func TestConsulBackendKilled(t *testing.T) {
	c := newCluster(t, 3)
	px := c.startProxy(t, "balancer:\n  ejection:\n    cooldown: 2s\n")
	victim := c.bs[1]
	runs := []*testkit.Hold{
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 30, Concurrency: 15}),
		startHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 30, Concurrency: 15}),
	}
	for _, h := range runs {
		h.WaitProgress(t, "all_acked", 30*time.Second)
	}
	hsBefore, _ := px.metrics(t).Value("sioproxy_handshakes_total", "backend", victim.Name)

	critical := make(chan time.Time, 1)
	stopWatch := make(chan struct{})
	go func() { // Consul's verdict, watched apart from the proxy's
		defer close(critical)
		for {
			checks, _, err := c.consul.Health().Checks(service, nil)
			for _, ch := range checks {
				if err == nil && ch.CheckID == testkit.ConsulCheckID(victim.Name) && ch.Status == "critical" {
					critical <- time.Now()
					return
				}
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	killAt := testkit.NowMs()
	t0 := time.UnixMilli(killAt)
	victim.Kill()
	obs := px.observe(t, victim.Name, 8*time.Second, drained)
	close(stopWatch)
	critAt := <-critical
	eff := checkAvoided(t, "backend killed", obs, victim.Name, t0)
	t.Logf("PROPAGATION kill -> consul check critical: %v; -> /backends draining: %v; -> no new sessions: %v",
		since(t0, critAt), since(t0, firstState(obs, "draining")), eff.Round(time.Millisecond))
	if critAt.IsZero() || critAt.Sub(t0) > criticalBudget {
		t.Errorf("consul check of %s critical after %v, want <= %v", victim.Name, since(t0, critAt), criticalBudget)
	}
	if n := countOn(obs)[victim.Name]; n != 0 {
		t.Errorf("%d probe handshakes after the kill landed on the dead %s", n, victim.Name)
	}

	for _, h := range runs {
		h.WaitAckedAfter(t, killAt, reconnectBudget+5*time.Second)
	}
	var affected, affectedPolling int
	var slowest int64
	for _, h := range runs {
		sum := h.Stop(t)
		for _, s := range sum.Sessions {
			label := fmt.Sprintf("%s session %d", h.Opts.Mode, s.ID)
			if s.FirstBackend != victim.Name {
				if len(s.Disconnects) > 0 || len(s.Reconnects) > 0 || len(s.Errors) > 0 || len(s.Backends) != 1 {
					t.Errorf("%s on %s (alive) disturbed: disconnects %v, reconnects %v, errors %q", label, s.FirstBackend, s.Disconnects, s.Reconnects, s.Errors)
				}
				continue
			}
			affected++
			if h.Opts.Mode == "polling" {
				affectedPolling++
			}
			if len(s.Reconnects) == 0 {
				t.Errorf("%s (on %s) never reconnected; disconnects %v, errors %q", label, victim.Name, s.Disconnects, s.Errors)
				continue
			}
			back := s.Reconnects[0].At - killAt
			slowest = max(slowest, back)
			if time.Duration(back)*time.Millisecond > reconnectBudget {
				t.Errorf("%s reconnected %d ms after the kill, want <= %v", label, back, reconnectBudget)
			}
			if s.LastBackend == victim.Name || s.LastAckAt <= s.Reconnects[0].At {
				t.Errorf("%s: last backend %s, last ack %d ms after reconnecting: not served by a survivor", label, s.LastBackend, s.LastAckAt-s.Reconnects[0].At)
			}
		}
	}
	t.Logf("PROPAGATION kill -> every affected session reconnected elsewhere: %d ms (%d sessions, %d polling)", slowest, affected, affectedPolling)
	if affected < 8 {
		t.Errorf("only %d of 60 sessions were on the killed backend", affected)
	}
	m := px.metrics(t)
	if v, _ := m.Value("sioproxy_handshakes_total", "backend", victim.Name); v != hsBefore {
		t.Errorf("%s got %v handshakes after it was killed", victim.Name, v-hsBefore)
	}
	if v, _ := m.Value("sioproxy_sid_unknown_total"); v < float64(affectedPolling) {
		t.Errorf("sioproxy_sid_unknown_total = %v, want >= %d (each polling session of the dead backend is told its sid is gone)", v, affectedPolling)
	} else {
		t.Logf("sioproxy_sid_unknown_total = %v for %d polling sessions of the dead backend", v, affectedPolling)
	}
	if v, _ := m.Value("sioproxy_backend_active", "backend", victim.Name); v != 0 {
		t.Errorf("sioproxy_backend_active{backend=%q} = %v, want 0", victim.Name, v)
	}

	// Once the passive ejection is over (its cooldown is 2 s here, 10 s by default), Consul's
	// verdict alone keeps the dead backend out: new handshakes do not even try it (its failure count
	// stays put).
	if !testkit.WaitFor(10*time.Second, func() bool {
		for _, b := range px.backends(t) {
			if b.ID == victim.Name {
				return !b.Ejected
			}
		}
		return false
	}) {
		t.Fatalf("%s still ejected 10 s after the kill (cooldown 2 s)", victim.Name)
	}
	failures := func() float64 {
		v, _ := px.metrics(t).Value("sioproxy_backend_failures_total", "backend", victim.Name)
		return v
	}
	f0 := failures()
	probes := px.handshakes(t, 20)
	if n := countIn(probes, victim.Name); n != 0 || failures() != f0 {
		t.Errorf("after the ejection ended: %d probes on the dead %s, its failures went %v -> %v; want none tried", n, victim.Name, f0, failures())
	}
	for _, b := range px.backends(t) {
		if b.ID == victim.Name && (b.State != "draining" || b.Ejected) {
			t.Errorf("dead backend in /backends after its ejection: %+v, want draining (Consul critical), no longer ejected", b)
		}
	}
}

// TestConsulOutage kills the Consul agent: the proxy keeps serving the last set and says so in
// /metrics; once Consul is back (restarted, services registered again) changes flow again.
func TestConsulOutage(t *testing.T) {
	c := newCluster(t, 3)
	px := c.startProxy(t)

	t0 := time.Now()
	c.agent.Kill()
	healthy := func() float64 { v, _ := px.metrics(t).Value("sioproxy_consul_healthy"); return v }
	for healthy() != 0 {
		if time.Since(t0) > 10*time.Second {
			t.Fatalf("sioproxy_consul_healthy still 1 10 s after Consul was killed")
		}
		pause()
	}
	t.Logf("PROPAGATION consul killed -> sioproxy_consul_healthy 0: %v", time.Since(t0).Round(time.Millisecond))
	if code, body := px.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with Consul down: %d %s, want 200 (serving the last set)", code, body)
	}
	if got := px.states(t); !mapsEqual(got, c.allStates("active")) {
		t.Errorf("/backends with Consul down: %v, want the last set, all active", got)
	}
	sum := runClients(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 30})
	requireAllOK(t, sum, 30)
	t.Logf("with Consul down: 30 new sessions per backend %v", sum.ByBackend)
	for _, id := range c.names() {
		if sum.ByBackend[id] == 0 {
			t.Errorf("no new session on %s with Consul down: %v", id, sum.ByBackend)
		}
	}
	if age, _ := px.metrics(t).Value("sioproxy_consul_last_index_age_seconds"); age < time.Since(t0).Seconds()-1 {
		t.Errorf("sioproxy_consul_last_index_age_seconds = %v, Consul has been down %v", age, time.Since(t0))
	}

	t1 := time.Now()
	c.agent.Restart()
	c.registerAll(t)
	restarted := time.Now()
	for healthy() != 1 {
		if time.Since(restarted) > 40*time.Second {
			t.Fatalf("sioproxy_consul_healthy still 0 40 s after Consul came back")
		}
		pause()
	}
	t.Logf("consul restarted in %v (down %v in all); PROPAGATION consul back -> sioproxy_consul_healthy 1: %v",
		restarted.Sub(t1).Round(time.Millisecond), restarted.Sub(t0).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	px.waitStates(t, c.allStates("active"), 10*time.Second)

	const victim = "chat-3"
	want := c.allStates("active")
	want[victim] = "draining"
	t2 := time.Now()
	if err := c.consul.Agent().EnableServiceMaintenance(victim, "consule2e"); err != nil {
		t.Fatalf("enable maintenance: %v", err)
	}
	px.waitStates(t, want, 10*time.Second)
	on := time.Since(t2)
	t3 := time.Now()
	if err := c.consul.Agent().DisableServiceMaintenance(victim); err != nil {
		t.Fatalf("disable maintenance: %v", err)
	}
	px.waitStates(t, c.allStates("active"), 10*time.Second)
	off := time.Since(t3)
	t.Logf("PROPAGATION after the outage: maintenance on -> draining %v, off -> active %v",
		on.Round(time.Millisecond), off.Round(time.Millisecond))
	if on > drainBudget || off > drainBudget {
		t.Errorf("after the outage maintenance took %v on, %v off; want <= %v", on, off, drainBudget)
	}
}
