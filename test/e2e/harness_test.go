package e2e

import (
	"fmt"
	"testing"
	"time"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "e2e",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client", "socket.io-v2", "socket.io-client-v2"},
	})
}

// startProxy starts sioproxy on addr ("" = a free port), admin listener off, in front of backends,
// and waits until it accepts connections.
func startProxy(t *testing.T, name, addr string, backends []string) *testkit.Proxy {
	t.Helper()
	p := launchProxy(t, name, addr, backends)
	p.WaitReady(t)
	return p
}

// launchProxy starts sioproxy without waiting for readiness.
func launchProxy(t *testing.T, name, addr string, backends []string) *testkit.Proxy {
	t.Helper()
	// The admin listener is off: its default port is shared by every proxy on the machine.
	args := []string{"-log-level", "info"}
	for _, b := range backends {
		args = append(args, "-backend", b)
	}
	return testkit.LaunchProxy(t, testkit.ProxySpec{Name: name, Addr: addr, Args: args})
}

// waitDisconnects waits until backend b has logged a disconnect for every sid in want.
func waitDisconnects(b *testkit.Backend, want map[string]bool, timeout time.Duration) error {
	pending := map[string]bool{}
	for sid := range want {
		pending[sid] = true
	}
	_, _, err := testkit.WaitJSON(b.Proc, 0, timeout, func(e testkit.BackendEvent) bool {
		if e.Event == "disconnect" {
			delete(pending, e.SID)
		}
		return len(pending) == 0
	})
	if len(pending) == 0 {
		return nil
	}
	if b.Exited() {
		return fmt.Errorf("backend %s exited with %d disconnects missing", b.Name, len(pending))
	}
	return fmt.Errorf("backend %s: %d of %d sessions not disconnected within %v: %v", b.Name, len(pending), len(want), timeout, err)
}

// assertNoUnknownSID fails when any backend answered "Session ID unknown" for a sid it never issued:
// a request of a session reached a backend that does not own it. A late request for a session that
// the backend itself issued and already closed (a poll racing the client's close) is the client's own
// race, not a routing error, and is only counted.
func assertNoUnknownSID(t *testing.T, bs []*testkit.Backend) {
	t.Helper()
	unowned, late := testkit.UnownedRequests(bs)
	for _, u := range unowned {
		e := u.Event
		t.Errorf("backend %s got a request for a session it does not own: %s sid_hash %s (its log has the URL)", u.Backend, e.Message, proxy.SIDHash(e.SID))
	}
	if late > 0 {
		t.Logf("%d requests reached their own backend after their session had closed", late)
	}
}
