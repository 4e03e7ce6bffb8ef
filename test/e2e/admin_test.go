package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// TestDrainParametersKeepProcessUp: drain parameters that used to pass the admin API and crash the
// process a deadline later (rate=NaN: "invalid argument to Int64N" in the drain scheduler), and the
// other absurd ones, get 400 with a reason from the real binary; the backend keeps its state and
// sessions, and a valid drain with a deadline then closes them, the process alive throughout.
func TestDrainParametersKeepProcessUp(t *testing.T) {
	b := testkit.StartBackends(t, 1, "d%d", "4")[0]
	px := testkit.StartProxy(t, testkit.ProxySpec{Admin: testkit.FreeAddr(t), Args: []string{"-backend", b.URL(), "-log-level", "warn"}})
	hold := testkit.StartHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "polling", N: 2})
	hold.WaitProgress(t, "all_connected", 60*time.Second)

	id := b.URL()
	path := px.AdminURL("/backends/" + strings.ReplaceAll(id, "/", "%2F") + "/drain")
	backend := func() (state string, sessions int64) {
		resp, err := http.Get(px.AdminURL("/backends"))
		if err != nil {
			t.Fatalf("GET /backends: %v (proxy exited: %v)", err, px.Exited())
		}
		defer resp.Body.Close()
		var vs []struct {
			State    string `json:"state"`
			Sessions int64  `json:"sessions"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&vs); err != nil || len(vs) != 1 {
			t.Fatalf("GET /backends: %v %v", err, vs)
		}
		return vs[0].State, vs[0].Sessions
	}
	if !testkit.WaitFor(10*time.Second, func() bool { _, n := backend(); return n == 2 }) {
		t.Fatal("the 2 held sessions are not counted")
	}
	for _, q := range []string{"deadline=1ms&rate=NaN", "deadline=1ms&rate=Inf", "deadline=1ms&rate=-1", "deadline=1ms&rate=0",
		"deadline=1ms&rate=1e-300", "deadline=1ms&rate=1e300", "deadline=-1s", "deadline=0s", "deadline=48h", "rate=NaN"} {
		resp, err := http.Post(path+"?"+q, "", nil)
		if err != nil {
			t.Fatalf("drain?%s: %v", q, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("drain?%s: %d %s, want 400 with the reason", q, resp.StatusCode, body)
		}
	}
	if state, n := backend(); state != "active" || n != 2 {
		t.Fatalf("after refused drains the backend is %s with %d sessions, want active with 2", state, n)
	}
	resp, err := http.Post(path+"?deadline=1ms&rate=1000", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("valid drain: %v %v", resp, err)
	}
	resp.Body.Close()
	if !testkit.WaitFor(20*time.Second, func() bool { s, n := backend(); return s == "draining" && n == 0 }) {
		s, n := backend()
		t.Fatalf("the drain's deadline passed and the backend is %s with %d sessions", s, n)
	}
	if px.Exited() {
		t.Fatalf("the proxy exited: %v\n%s", px.Err(), px.Tail(20))
	}
}
