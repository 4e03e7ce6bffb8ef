package pysio

import (
	"testing"
	"time"

	"sioproxy/test/testkit"
)

const clientEmits = 5

// clientSessions are the sessions per run of each python-socketio client flavour.
var clientSessions = map[string]int{
	"async": 20, // socketio.AsyncClient: aiohttp for HTTP and WebSocket
	"sync":  10, // socketio.Client: requests and websocket-client, a thread per session
}

// vanishSessions are the sessions per mode left to be cut mid-flight.
const vanishSessions = 6

// goneBudget is how long a backend may take, through the proxy, to learn that a client went away
// mid-flight. Without a proxy an Engine.IO server learns it at once: the cut long-poll or WebSocket
// closes the session ("transport error" / "transport close").
const goneBudget = 5 * time.Second

// TestPythonClients runs python-socketio's clients through sioproxy against three socket.io@4
// backends, both flavours in every transport mode: every session must connect, get its acks and
// a binary round trip from one backend, and end on the expected transport (python-engineio
// upgrades right after the handshake). Stickiness is checked from both ends: each session's client
// recorded every request it made (the handshake, then only its own sid, each answered 200 or 101),
// and the owner must have counted at least as many requests carrying the sid. New sessions must
// spread.
//
// The vanish runs leave their sessions open until the client process ends: the kernel cuts their
// pending long-polls and WebSockets, as when a client is killed or its network is lost, and as
// python-socketio 5.7's own disconnect() often does (its close packet is often lost, and the
// asyncio client cuts its pending long-poll, see client.py). The proxy must pass the cut on
// (client aborts propagate), so each owner must close the session within goneBudget, as it does
// without a proxy; else the session lingers for pingInterval+pingTimeout (45 s), counted against
// its backend by the server and by the proxy's balancer.
func TestPythonClients(t *testing.T) {
	bs := testkit.StartBackends(t, 3, "n%d", "4")
	px := startProxy(t, bs)
	var runs []pyRun
	for _, c := range []string{"async", "sync"} {
		for _, m := range modes {
			runs = append(runs, pyRun{Client: c, Mode: m.name, N: clientSessions[c]})
		}
	}
	for _, m := range modes {
		runs = append(runs, pyRun{Client: "async", Mode: m.name, N: vanishSessions, Vanish: true})
	}
	start := time.Now()
	sums, exited := runPyClients(t, px.URL(), clientEmits, runs)
	t.Logf("client.py: %d runs in %v", len(runs), exited.Sub(start).Round(time.Millisecond))

	total := map[string]int{}
	for i, sum := range sums {
		r := runs[i]
		m := modeOf(r.Mode)
		name := r.Client + "/" + r.Mode
		if r.Vanish {
			name = "vanish/" + r.Mode
		}
		t.Run(name, func(t *testing.T) {
			if sum.Client != r.Client || sum.Mode != r.Mode {
				t.Fatalf("summary of %s/%s, want %s/%s", sum.Client, sum.Mode, r.Client, r.Mode)
			}
			t.Logf("%d sessions in %d ms, by backend %v", len(sum.Sessions), sum.Ms, sum.ByBackend)
			sessions := make([]testkit.ClientSession, len(sum.Sessions))
			var checks []ownerCheck
			for i, s := range sum.Sessions {
				sessions[i] = s.ClientSession
				if s.Requests < m.minRequests(clientEmits) {
					t.Errorf("session %d recorded %d requests (%v), want >= %d", s.ID, s.Requests, s.Statuses, m.minRequests(clientEmits))
				}
				if len(s.Backends) == 1 {
					checks = append(checks, ownerCheck{ID: s.ID, Backend: s.Backends[0], RawSID: s.BackendSID, MinRequests: s.Requests})
				}
			}
			assertSessions(t, sessions, r.N, m.name, m.endTransport)
			if r.Vanish {
				assertGone(t, checks, bs, exited.Add(goneBudget))
			} else {
				assertOwners(t, checks, bs)
			}
		})
		for b, n := range sum.ByBackend {
			total[b] += n
		}
	}
	t.Logf("sessions by backend over all runs: %v", total)
	assertSpread(t, total, bs, 0.2)
	assertNoMisrouted(t, bs)
}

// assertGone checks that the owner of each session logged its end by deadline.
func assertGone(t *testing.T, checks []ownerCheck, bs []*testkit.Backend, deadline time.Time) {
	t.Helper()
	for _, b := range bs {
		pending := map[string]bool{}
		for _, c := range checks {
			if c.Backend == b.Name {
				pending[c.RawSID] = true
			}
		}
		want := len(pending)
		if want == 0 {
			continue
		}
		// The deadline is the same for every backend: the budget runs from the client's exit.
		_, _, _ = testkit.WaitJSON(b.Proc, 0, max(time.Until(deadline), 0), func(e testkit.BackendEvent) bool {
			if e.Event == "disconnect" {
				delete(pending, e.SID)
			}
			return len(pending) == 0
		})
		if len(pending) > 0 {
			t.Errorf("backend %s: %d of its %d sessions still open %v after their client went away",
				b.Name, len(pending), want, goneBudget)
		}
	}
}
