package e2e

import (
	"strings"
	"testing"
	"time"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

// modes are the client transport setups, with the transport each session must end on.
var modes = []struct {
	name, endTransport string
	minRequests        func(emits int) int // requests the owning backend must have seen per session
}{
	// polling: every acked emit and the binary round trip need their own POST, plus the handshake.
	{"polling", "polling", func(emits int) int { return emits + 2 }},
	// upgrade: the handshake and the WebSocket upgrade carrying the sid.
	{"upgrade", "websocket", func(int) int { return 2 }},
	// websocket only: the single upgrade request.
	{"websocket", "websocket", func(int) int { return 1 }},
}

const (
	matrixSessions = 100
	matrixEmits    = 5
)

// TestStickySessions runs real socket.io@4 and socket.io@2 clients through one sioproxy per version
// group of three backends, in every transport mode: every session must succeed on exactly one
// backend, sessions must spread evenly, and no backend may see a request of a session it doesn't own.
func TestStickySessions(t *testing.T) {
	for _, version := range []string{"4", "2"} {
		t.Run("socket.io@"+version, func(t *testing.T) {
			bs := testkit.StartBackends(t, 3, "v"+version+"-%d", version)
			px := startProxy(t, "sioproxy v"+version, "", testkit.BackendURLs(bs))
			for _, m := range modes {
				t.Run(m.name, func(t *testing.T) {
					start := time.Now()
					// All sessions at once: p2c places by the load at the time, so with a pool of workers
					// (clients.js's default 50) sessions that end sooner on one backend earn it more of the
					// later ones, and the cumulative shares checked below would measure session lengths.
					sum := testkit.RunClients(t, testkit.ClientOpts{URL: px.URL(), Mode: m.name, Version: version, N: matrixSessions, Emits: matrixEmits, Concurrency: matrixSessions})
					t.Logf("%d sessions in %v (clients.js %d ms), by backend %v", len(sum.Sessions), time.Since(start).Round(time.Millisecond), sum.Ms, sum.ByBackend)
					assertSessions(t, sum, matrixSessions, m.name, m.endTransport, bs, 0.25)
					assertOwnersSawRequests(t, sum, bs, m.minRequests(matrixEmits))
				})
			}
			assertNoUnknownSID(t, bs)
		})
	}
}

// assertSessions checks a run-mode summary of the given client mode: n sessions, all ok, each on one
// backend and ending on endTransport, each sid tagged (unless WebSocket-only), and each backend given
// at least minShare of the sessions.
func assertSessions(t *testing.T, sum testkit.ClientSummary, n int, mode, endTransport string, bs []*testkit.Backend, minShare float64) {
	t.Helper()
	if len(sum.Sessions) != n {
		t.Fatalf("got %d sessions, want %d", len(sum.Sessions), n)
	}
	bad := 0
	for _, s := range sum.Sessions {
		problems := testkit.SessionProblems(s, mode, endTransport)
		if len(problems) > 0 {
			bad++
			if bad <= 5 {
				t.Errorf("session %d (sid_hash %s, %d ms): %s", s.ID, proxy.SIDHash(s.SID), s.Ms, strings.Join(problems, "; "))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d sessions failed (summary ok=%d failed=%d)", bad, n, sum.OK, sum.Failed)
	}
	minCount := int(float64(n)*minShare + 0.999)
	for _, b := range bs {
		if got := sum.ByBackend[b.Name]; got < minCount {
			t.Errorf("backend %s got %d of %d sessions, want >= %d (by backend: %v)", b.Name, got, n, minCount, sum.ByBackend)
		}
	}
}

// assertOwnersSawRequests cross-checks the clients' view with the backends' logs: the raw sid of every
// session was created on the backend its acks named, and that backend counted at least minRequests
// requests for it by the time the session ended.
func assertOwnersSawRequests(t *testing.T, sum testkit.ClientSummary, bs []*testkit.Backend, minRequests int) {
	t.Helper()
	byName := map[string]*testkit.Backend{}
	owner := map[string]string{}
	for _, b := range bs {
		byName[b.Name] = b
		for _, e := range b.Events(0, "connection") {
			owner[e.SID] = b.Name
		}
	}
	want := map[string]map[string]bool{} // backend -> raw sids
	for _, s := range sum.Sessions {
		raw, ok := testkit.RawSID(s.SID)
		if !ok {
			raw = s.SID // WebSocket-only sessions keep the backend's sid
		}
		if len(s.Backends) != 1 {
			continue // reported by assertSessions
		}
		if owner[raw] != s.Backends[0] {
			t.Errorf("session %d: sid_hash %s was created on %q but its acks came from %q", s.ID, proxy.SIDHash(raw), owner[raw], s.Backends[0])
			continue
		}
		if want[s.Backends[0]] == nil {
			want[s.Backends[0]] = map[string]bool{}
		}
		want[s.Backends[0]][raw] = true
	}
	for name, sids := range want {
		b := byName[name]
		if err := waitDisconnects(b, sids, 15*time.Second); err != nil {
			t.Errorf("%v", err)
			continue
		}
		low := 0
		for _, e := range b.Events(0, "disconnect") {
			if sids[e.SID] && e.Requests < minRequests {
				low++
				if low <= 3 {
					t.Errorf("backend %s saw %d requests of session sid_hash %s, want >= %d", name, e.Requests, proxy.SIDHash(e.SID), minRequests)
				}
			}
		}
	}
}
