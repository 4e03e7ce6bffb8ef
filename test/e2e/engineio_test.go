package e2e

import (
	"encoding/json"
	"fmt"
	"testing"

	"sioproxy/test/testkit"
)

// TestPlainEngineIOOnItsOwnPath runs plain Engine.IO (the engine.io server and engine.io-client
// from npm, no Socket.IO) on its own path, /engine.io/, through a proxy configured with flags
// only (-backend twice, -path /engine.io/): every session, in every transport mode, is echoed by
// exactly one backend, and the sessions spread over both. Without -path the proxy would not see
// these requests as Engine.IO (issue 9, point 4: engine.io-client's own suite hung so).
func TestPlainEngineIOOnItsOwnPath(t *testing.T) {
	var urls []string
	for i := 1; i <= 2; i++ {
		name := fmt.Sprintf("eio-%d", i)
		p := testkit.Start(t, testkit.Command{Name: "engineio server " + name, Dir: testkit.NodeDir(), Bin: testkit.Node(),
			Args: []string{"engineio.js", "server", "--port", "0", "--name", name}})
		line, _, err := p.WaitLine(0, testkit.BackendReadyTimeout, testkit.HasEvent("ready"))
		if err != nil {
			t.Fatalf("engine.io server %s: %v\n%s", name, err, p.Tail(20))
		}
		var ready struct{ Port int }
		if err := json.Unmarshal([]byte(line), &ready); err != nil || ready.Port == 0 {
			t.Fatalf("ready line %q", line)
		}
		urls = append(urls, fmt.Sprintf("http://127.0.0.1:%d", ready.Port))
	}
	args := []string{"-log-level", "info", "-path", "/engine.io/"}
	for _, u := range urls {
		args = append(args, "-backend", u)
	}
	px := testkit.StartProxy(t, testkit.ProxySpec{Name: "sioproxy engine.io", Args: args})
	for _, mode := range []string{"polling", "upgrade", "websocket"} {
		t.Run(mode, func(t *testing.T) {
			const n = 30
			p := testkit.Start(t, testkit.Command{Name: "engineio clients " + mode, Dir: testkit.NodeDir(), Bin: testkit.Node(),
				Args: []string{"engineio.js", "clients", "--url", px.URL(), "--mode", mode, "--n", fmt.Sprint(n), "--msgs", "5"}})
			if err := p.Wait(testkit.ClientsRunTimeout); err != nil {
				t.Fatalf("engineio clients: %v\n%s", err, p.Tail(20))
			}
			line, _ := testkit.LastLine(p.Stdout(), "{")
			var sum struct {
				OK       int `json:"ok"`
				Sessions []struct {
					OK        bool     `json:"ok"`
					Backends  []string `json:"backends"`
					Transport string   `json:"transport"`
					Errors    []string `json:"errors"`
				} `json:"sessions"`
			}
			if err := json.Unmarshal([]byte(line), &sum); err != nil {
				t.Fatalf("summary %q: %v", testkit.RedactSIDs(line), err)
			}
			by := map[string]int{}
			want := map[string]string{"polling": "polling", "upgrade": "websocket", "websocket": "websocket"}[mode]
			for i, s := range sum.Sessions {
				if !s.OK || len(s.Backends) != 1 || s.Transport != want {
					t.Errorf("session %d: ok %v, backends %v (want exactly one), transport %q (want %q), errors %v",
						i, s.OK, s.Backends, s.Transport, want, s.Errors)
					continue
				}
				by[s.Backends[0]]++
			}
			t.Logf("%d of %d sessions ok, by backend %v", sum.OK, n, by)
			if sum.OK != n || len(sum.Sessions) != n {
				t.Fatalf("%d of %d sessions ok (%d reported)", sum.OK, n, len(sum.Sessions))
			}
			if len(by) != 2 {
				t.Errorf("sessions on %d backends, want both: %v", len(by), by)
			}
		})
	}
}
