package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// reconnectBudget is how long a client of a killed backend may take to be connected to a survivor.
const reconnectBudget = 5 * time.Second

// TestBackendFailover holds 150 sessions (polling and upgrading) on three backends and SIGKILLs one:
// its clients must be connected to a survivor within reconnectBudget and keep getting acks; the
// other sessions must not notice.
func TestBackendFailover(t *testing.T) {
	bs := testkit.StartBackends(t, 3, "f%d", "4")
	px := startProxy(t, "sioproxy", "", testkit.BackendURLs(bs))
	runs := []*testkit.Hold{
		testkit.StartHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", Version: "4", N: 75, Concurrency: 25}),
		testkit.StartHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", Version: "4", N: 75, Concurrency: 25}),
	}
	for _, h := range runs {
		h.WaitProgress(t, "all_acked", 60*time.Second)
	}

	victim := bs[1]
	victim.Kill() // returns once the process is gone
	// Acks the victim sent before it died may still arrive; count from its death, not from the signal.
	killAt := testkit.NowMs()
	t.Logf("killed backend %s at %d", victim.Name, killAt)

	// Every session, affected or not, must be acked again after the kill: affected ones only once
	// they are back on a survivor. The reconnect times are checked against the budget below.
	for _, h := range runs {
		h.WaitAckedAfter(t, killAt, reconnectBudget+5*time.Second)
	}

	var affected, unaffected int
	var slowest int64
	for _, h := range runs {
		sum := h.Stop(t)
		if sum.Connected != h.Opts.N {
			t.Errorf("%s: %d of %d sessions connected", h.Opts.Mode, sum.Connected, h.Opts.N)
		}
		for _, s := range sum.Sessions {
			label := fmt.Sprintf("%s session %d", h.Opts.Mode, s.ID)
			if s.FirstBackend == victim.Name {
				affected++
				if d := testkit.CheckFailedOver(t, label, s, victim.Name, killAt, reconnectBudget); d > slowest {
					slowest = d
				}
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
	t.Logf("affected %d sessions (slowest back after %d ms), unaffected %d", affected, slowest, unaffected)
	if affected < 25 {
		t.Errorf("only %d of 150 sessions were on the killed backend: placement is not spreading sessions", affected)
	}
	assertNoUnknownSID(t, []*testkit.Backend{bs[0], bs[2]})
}

// TestProxyRestart replaces the proxy under live polling sessions: proxy B binds the same port
// (SO_REUSEPORT), proxy A gets SIGTERM and drains. Tagged sids need no state, so B routes the sessions
// that A placed and no session notices.
func TestProxyRestart(t *testing.T) {
	bs := testkit.StartBackends(t, 3, "p%d", "4")
	pa := startProxy(t, "sioproxy A", "", testkit.BackendURLs(bs))
	h := testkit.StartHold(t, testkit.ClientOpts{URL: pa.URL(), Mode: "polling", Version: "4", N: 60, Concurrency: 30})
	h.WaitProgress(t, "all_acked", 60*time.Second)

	pb := launchProxy(t, "sioproxy B", pa.Addr, testkit.BackendURLs(bs))
	// Both processes now share the port; B is ready once it has logged that it listens on it.
	listening := func(l string) bool { return strings.Contains(l, `"listening"`) && strings.Contains(l, pa.Addr) }
	if _, _, err := pb.WaitLine(0, 15*time.Second, listening); err != nil {
		t.Fatalf("proxy B on the same port (SO_REUSEPORT): %v\n%s", err, pb.Tail(20))
	}
	if err := pa.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM proxy A: %v", err)
	}
	select {
	case <-pa.Done():
	case <-time.After(40 * time.Second):
		t.Fatalf("proxy A did not exit within 40 s of SIGTERM")
	}
	goneAt := testkit.NowMs()
	t.Logf("proxy A exited (%v)", pa.Err())
	if pb.Exited() {
		t.Fatalf("proxy B exited: %v", pb.Err())
	}

	// After A is gone, every session must still get acks, now through B.
	h.WaitAckedAfter(t, goneAt, 10*time.Second)
	sum := h.Stop(t)
	for _, s := range sum.Sessions {
		if len(s.Disconnects) > 0 || len(s.Reconnects) > 0 || len(s.Errors) > 0 {
			t.Errorf("session %d was disturbed by the restart: disconnects %v, reconnects %v, errors %q", s.ID, s.Disconnects, s.Reconnects, s.Errors)
		}
		if len(s.Backends) != 1 {
			t.Errorf("session %d saw backends %v", s.ID, s.Backends)
		}
		if s.LastAckAt <= goneAt {
			t.Errorf("session %d got no ack after proxy A exited (last ack %d ms before)", s.ID, goneAt-s.LastAckAt)
		}
	}
	assertNoUnknownSID(t, bs)
}
