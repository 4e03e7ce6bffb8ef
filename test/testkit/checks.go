package testkit

import (
	"fmt"
	"testing"
	"time"

	"sioproxy/proxy"
)

// CheckFailedOver asserts that session s, whose backend victim was killed at killAt (Unix ms),
// reconnected to a survivor within budget and got acks from it; it returns the time to reconnect
// in ms.
func CheckFailedOver(t testing.TB, label string, s ClientSession, victim string, killAt int64, budget time.Duration) int64 {
	t.Helper()
	if len(s.Reconnects) == 0 {
		t.Errorf("%s (on %s) never reconnected; disconnects %v, errors %q", label, victim, s.Disconnects, s.Errors)
		return 0
	}
	back := s.Reconnects[0].At - killAt
	if time.Duration(back)*time.Millisecond > budget {
		t.Errorf("%s reconnected %d ms after the kill, want <= %v (errors %q)", label, back, budget, s.Errors)
	}
	if s.LastBackend == victim || s.Reconnects[len(s.Reconnects)-1].Backend == victim {
		t.Errorf("%s is still on the killed backend %s", label, victim)
	}
	survivorAcks := 0
	for name, n := range s.AcksByBackend {
		if name != victim {
			survivorAcks += n
		}
	}
	if survivorAcks == 0 || s.LastAckAt <= s.Reconnects[0].At {
		t.Errorf("%s got no ack from a survivor after reconnecting (acks %v)", label, s.AcksByBackend)
	}
	return back
}

// RawSID strips the proxy's sid tag (TAG(3) + CHECK(1) + "."); ok is false when sid is not tagged.
func RawSID(sid string) (string, bool) {
	const tagged = 4
	if len(sid) <= tagged+1 || sid[tagged] != '.' {
		return "", false
	}
	for _, c := range sid[:tagged] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return sid[tagged+1:], true
}

// SessionProblems lists what is wrong with a clients.js session that should have ended cleanly:
// errors, not exactly one backend, not ending on endTransport, or (unless mode is "websocket",
// whose sid comes in a tunnelled frame the proxy does not rewrite) an untagged sid. A session not
// ok with no other problem is "not ok". Nil means the session is fine.
func SessionProblems(s ClientSession, mode, endTransport string) []string {
	var problems []string
	if len(s.Errors) > 0 {
		problems = append(problems, fmt.Sprintf("errors %q", s.Errors))
	}
	if len(s.Backends) != 1 {
		problems = append(problems, fmt.Sprintf("saw backends %v, want exactly one", s.Backends))
	}
	if s.Transport != endTransport {
		problems = append(problems, fmt.Sprintf("ended on transport %q, want %q", s.Transport, endTransport))
	}
	if _, ok := RawSID(s.SID); !ok && mode != "websocket" {
		problems = append(problems, fmt.Sprintf("sid (hash %s) is not in tagged form TAGC.sid", proxy.SIDHash(s.SID)))
	}
	if !s.OK && len(problems) == 0 {
		problems = append(problems, "not ok")
	}
	return problems
}

// UnownedRequests scans the backends' logs for "Session ID unknown" (connection_error code 1): a
// request for a sid its backend never issued (a session's request reached a backend that does not
// own it) is returned with the backend's name; one for a sid the backend itself issued and already
// closed (a poll racing the client's close) is the client's own race and only counted in late.
func UnownedRequests(bs []*Backend) (unowned []UnownedRequest, late int) {
	for _, b := range bs {
		issued := map[string]bool{}
		for _, e := range b.Events(0, "connection") {
			issued[e.SID] = true
		}
		for _, e := range b.Events(0, "connection_error") {
			switch {
			case e.Code != 1:
			case issued[e.SID]:
				late++
			default:
				unowned = append(unowned, UnownedRequest{Backend: b.Name, Event: e})
			}
		}
	}
	return unowned, late
}

// UnownedRequest is a backend's connection_error for a sid it never issued.
type UnownedRequest struct {
	Backend string
	Event   BackendEvent
}
