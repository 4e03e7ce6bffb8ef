package pysio

import (
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// mode is a client transport setup.
type mode struct {
	name, endTransport string
	minRequests        func(emits int) int // requests the owner must at least have seen per session
}

// modes are the client transport setups, with the transport each session must end on and the
// requests its owner must at least have seen for it.
var modes = []mode{
	// polling: the handshake, and a POST for each acked emit and the binary round trip at least.
	{"polling", "polling", func(emits int) int { return emits + 2 }},
	// polling then upgrade: the handshake and the WebSocket upgrade carrying the sid.
	{"upgrade", "websocket", func(int) int { return 2 }},
	// WebSocket only: the single upgrade request.
	{"websocket", "websocket", func(int) int { return 1 }},
}

// modeOf returns the entry of modes named name.
func modeOf(name string) mode {
	for _, m := range modes {
		if m.name == name {
			return m
		}
	}
	panic("unknown mode " + name)
}

// assertSessions checks the sessions of one client run of mode: n of them, each ok (no error, no
// disconnect), on exactly one backend, ending on endTransport, and (unless WebSocket-only, whose
// sid comes in a tunnelled frame) with a tagged sid.
func assertSessions(t *testing.T, sessions []testkit.ClientSession, n int, mode, endTransport string) {
	t.Helper()
	if len(sessions) != n {
		t.Fatalf("got %d sessions, want %d", len(sessions), n)
	}
	bad := 0
	for _, s := range sessions {
		problems := testkit.SessionProblems(s, mode, endTransport)
		if len(problems) > 0 {
			bad++
			if bad <= 5 {
				t.Errorf("session %d (%d ms): %s", s.ID, s.Ms, strings.Join(problems, "; "))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d sessions failed", bad, n)
	}
}

// assertSpread checks that every backend got at least minShare of the sessions counted in byBackend.
func assertSpread(t *testing.T, byBackend map[string]int, bs []*testkit.Backend, minShare float64) {
	t.Helper()
	total := 0
	for _, n := range byBackend {
		total += n
	}
	minCount := int(float64(total)*minShare + 0.999)
	for _, b := range bs {
		if got := byBackend[b.Name]; got < minCount {
			t.Errorf("backend %s got %d of %d sessions, want >= %d (by backend: %v)", b.Name, got, total, minCount, byBackend)
		}
	}
}

// ownerCheck is what the owner of one session must have logged: a connection for RawSID, and at
// least MinRequests requests carrying it when the session ended.
type ownerCheck struct {
	ID          int
	Backend     string // the backend that answered the session's acks
	RawSID      string // the sid as the backend knows it
	MinRequests int
}

// assertOwners cross-checks the clients' view with the backends' logs: each session's sid was
// created on the backend its acks named, and that backend counted at least MinRequests requests
// carrying the sid by the time the session ended (a request sent elsewhere is missing from it).
func assertOwners(t *testing.T, checks []ownerCheck, bs []*testkit.Backend) {
	t.Helper()
	byName := map[string]*testkit.Backend{}
	owner := map[string]string{}
	for _, b := range bs {
		byName[b.Name] = b
		for _, e := range b.Events(0, "connection") {
			owner[e.SID] = b.Name
		}
	}
	want := map[string]map[string]ownerCheck{} // backend -> raw sid -> check
	for _, c := range checks {
		if owner[c.RawSID] != c.Backend {
			t.Errorf("session %d: its sid was created on %q but its acks came from %q", c.ID, owner[c.RawSID], c.Backend)
			continue
		}
		if want[c.Backend] == nil {
			want[c.Backend] = map[string]ownerCheck{}
		}
		want[c.Backend][c.RawSID] = c
	}
	for name, sids := range want {
		b := byName[name]
		pending := map[string]bool{}
		for sid := range sids {
			pending[sid] = true
		}
		_, _, err := testkit.WaitJSON(b.Proc, 0, 15*time.Second, func(e testkit.BackendEvent) bool {
			if e.Event == "disconnect" {
				delete(pending, e.SID)
			}
			return len(pending) == 0
		})
		if len(pending) > 0 {
			t.Errorf("backend %s: %d of %d sessions not disconnected: %v", name, len(pending), len(sids), err)
			continue
		}
		low := 0
		for _, e := range b.Events(0, "disconnect") {
			if c, ok := sids[e.SID]; ok && e.Requests < c.MinRequests {
				if low++; low <= 3 {
					t.Errorf("backend %s counted %d requests of session %d, want >= %d", name, e.Requests, c.ID, c.MinRequests)
				}
			}
		}
	}
}

// assertNoMisrouted fails when a backend got a request carrying a sid it never issued: a request
// of a session reached a backend that does not own it. A late request for a session the backend
// itself issued and already closed (a poll racing the client's close) is the client's own race,
// and only counted.
func assertNoMisrouted(t *testing.T, bs []*testkit.Backend) {
	t.Helper()
	unowned, late := testkit.UnownedRequests(bs)
	for _, u := range unowned {
		t.Errorf("backend %s got a request for a session it does not own: %q (its log has the URL)", u.Backend, u.Event.Message)
	}
	if late > 0 {
		t.Logf("%d requests reached their own backend after their session had closed", late)
	}
}

// untagged is sid without the proxy's tag, or sid itself when it has none (WebSocket-only).
func untagged(sid string) string {
	if raw, ok := testkit.RawSID(sid); ok {
		return raw
	}
	return sid
}
