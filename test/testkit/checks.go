package testkit

import (
	"testing"
	"time"
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
