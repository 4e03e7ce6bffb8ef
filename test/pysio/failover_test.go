package pysio

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// reconnectBudget is how long a client of a killed backend may take to be connected to a survivor.
const reconnectBudget = 5 * time.Second

// failoverSessions are the held sessions per transport mode.
const failoverSessions = 20

// checkFailover holds socket.io-client@4 sessions in every transport mode on the python-socketio
// servers bs behind px and SIGKILLs one: its clients must be connected to a survivor within
// reconnectBudget and get acks from it; the other sessions must not notice.
func checkFailover(t *testing.T, bs []*testkit.Backend, px *testkit.Proxy) {
	var runs []*testkit.Hold
	for _, m := range modes {
		runs = append(runs, testkit.StartHold(t, testkit.ClientOpts{URL: px.URL(), Mode: m.name, N: failoverSessions,
			Concurrency: failoverSessions, Origin: px.URL(), HoldMs: 60000}))
	}
	for _, h := range runs {
		h.WaitProgress(t, "all_acked", 30*time.Second)
	}

	victim := bs[1]
	victim.Kill() // returns once the process is gone
	// Acks the victim sent before it died may still arrive; count from its death.
	killAt := testkit.NowMs()

	// Every session must be acked again after the kill; the reconnect times are checked below.
	for _, h := range runs {
		h.WaitAckedAfter(t, killAt, reconnectBudget+5*time.Second)
	}
	var affected, unaffected int
	var slowest int64
	for _, h := range runs {
		sum := stopHold(t, h)
		if sum.Connected != h.Opts.N {
			t.Errorf("%s: %d of %d sessions connected", h.Opts.Mode, sum.Connected, h.Opts.N)
		}
		for _, s := range sum.Sessions {
			label := fmt.Sprintf("%s session %d", h.Opts.Mode, s.ID)
			if s.FirstBackend == victim.Name {
				affected++
				slowest = max(slowest, testkit.CheckFailedOver(t, label, s, victim.Name, killAt, reconnectBudget))
				continue
			}
			unaffected++
			if len(s.Disconnects) > 0 || len(s.Reconnects) > 0 || len(s.Errors) > 0 {
				t.Errorf("%s on %s (not killed) was disturbed: disconnects %v, reconnects %v, errors %q",
					label, s.FirstBackend, s.Disconnects, s.Reconnects, s.Errors)
			}
			if len(s.Backends) != 1 || s.LastAckAt <= killAt {
				t.Errorf("%s: backends %v, last ack %d ms after the kill", label, s.Backends, s.LastAckAt-killAt)
			}
		}
	}
	t.Logf("killed %s: %d sessions affected (slowest back after %d ms), %d unaffected", victim.Name, affected, slowest, unaffected)
	if n := len(modes) * failoverSessions; affected < n/6 {
		t.Errorf("only %d of %d sessions were on the killed backend: placement is not spreading sessions", affected, n)
	}
	assertNoMisrouted(t, []*testkit.Backend{bs[0], bs[2]})
}

// stopHold ends a hold (SIGINT) and returns its summary as soon as it is printed (see
// runNodeClients: waiting for the process to exit costs up to 5 s with python-engineio).
func stopHold(t *testing.T, h *testkit.Hold) testkit.ClientSummary {
	t.Helper()
	mark := h.Len()
	if err := h.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("clients %s: SIGINT: %v", h.Opts.Mode, err)
	}
	line, _, err := h.WaitLine(mark, 30*time.Second, func(l string) bool { return strings.HasPrefix(l, `{"ok"`) })
	if err != nil {
		t.Fatalf("clients %s printed no summary: %v\n%s", h.Opts.Mode, err, h.Tail(30))
	}
	var s testkit.ClientSummary
	if err := json.Unmarshal([]byte(line), &s); err != nil || s.Fatal != "" {
		t.Fatalf("clients %s summary: %v %s", h.Opts.Mode, err, s.Fatal)
	}
	return s
}
