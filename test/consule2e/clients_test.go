package consule2e

import (
	"testing"

	"sioproxy/test/testkit"
)

// withDefaults gives the clients.js runs of this package 3 emits per session and 25 sessions at
// once unless set.
func withDefaults(o testkit.ClientOpts) testkit.ClientOpts {
	if o.Emits == 0 {
		o.Emits = 3
	}
	if o.Concurrency == 0 {
		o.Concurrency = 25
	}
	return o
}

// runClients runs clients.js (socket.io-client@4) to completion and returns its summary.
func runClients(t *testing.T, o testkit.ClientOpts) testkit.ClientSummary {
	t.Helper()
	return testkit.RunClients(t, withDefaults(o))
}

// startHold starts a hold-mode clients.js run.
func startHold(t *testing.T, o testkit.ClientOpts) *testkit.Hold {
	t.Helper()
	return testkit.StartHold(t, withDefaults(o))
}

// requireAllOK fails unless every session of a run-mode summary succeeded on exactly one backend.
func requireAllOK(t *testing.T, s testkit.ClientSummary, n int) {
	t.Helper()
	if s.OK == n && s.Failed == 0 && len(s.Sessions) == n {
		return
	}
	bad := 0
	for _, ss := range s.Sessions {
		if !ss.OK && bad < 5 {
			bad++
			t.Logf("%s session %d: backends %v, errors %q", s.Mode, ss.ID, ss.Backends, ss.Errors)
		}
	}
	t.Fatalf("clients.js %s: %d ok, %d failed of %d sessions", s.Mode, s.OK, s.Failed, n)
}
