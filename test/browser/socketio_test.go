package browser

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

// tabResult is what testdata/client.html reports (window.__result), plus run.js diagnostics.
type tabResult struct {
	Tab              string   `json:"tab"`
	Errors           []string `json:"errors"`
	Disconnects      []string `json:"disconnects"`
	SID              string   `json:"sid"` // the sid the browser holds (tagged by the proxy)
	ConnectTransport string   `json:"connectTransport"`
	FinalTransport   string   `json:"finalTransport"`
	Acks             []struct {
		Backend string `json:"backend"`
		I       int    `json:"i"`
		Intact  bool   `json:"intact"`
	} `json:"acks"`
	Whoami *struct {
		Backend   string `json:"backend"`
		Transport string `json:"transport"`
		SID       string `json:"sid"` // the sid the backend issued
	} `json:"whoami"`
	LoadedMs    int `json:"loadedMs"`    // page load (run.js)
	ConnectedMs int `json:"connectedMs"` // Socket.IO connected, since navigation start (page)
	FinishedMs  int `json:"finishedMs"`  // all acks in, since navigation start (page)
	DoneMs      int `json:"doneMs"`      // result read (run.js)

	Console []string        `json:"console"`
	Partial json.RawMessage `json:"partial"`
}

const (
	tabsPerMode  = 10
	echoesPerTab = 5
)

// TestSocketIOClients runs the Socket.IO browser clients through the proxy, tabsPerMode tabs per
// transport mode, against three real Socket.IO servers of the same major version.
func TestSocketIOClients(t *testing.T) {
	cases := []struct {
		name    string
		version string // client and server major version
		mode    string // client transports: polling, websocket, upgrade (polling then websocket)
		initial string // transport of the session when the backend accepted it
		final   string // transport at the end
	}{
		{"v4/polling", "4", "polling", "polling", "polling"},
		{"v4/upgrade", "4", "upgrade", "polling", "websocket"},
		{"v4/websocket", "4", "websocket", "websocket", "websocket"},
		{"v2/upgrade", "2", "upgrade", "polling", "websocket"},
	}
	type cluster struct {
		backends []*testkit.Backend
		proxy    string
	}
	clusters := map[string]*cluster{}
	var all []*testkit.Backend
	for _, tc := range cases {
		if clusters[tc.version] == nil {
			bs := testkit.LaunchBackends(t, 3, "v"+tc.version+"-%d", tc.version)
			clusters[tc.version] = &cluster{backends: bs}
			all = append(all, bs...)
		}
	}
	drv := browserDriver(t)
	page := pageServer(t)
	testkit.WaitReady(t, 60*time.Second, all...)
	for _, c := range clusters {
		c.proxy = startProxy(t, c.backends)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clusters[tc.version]
			marks := make([]int, len(c.backends))
			for i, b := range c.backends {
				marks[i] = b.Len()
			}
			urls := make([]string, tabsPerMode)
			for i := range urls {
				urls[i] = clientURL(page, c.proxy, tc.version, tc.mode, i+1, echoesPerTab)
			}
			start := time.Now()
			var res struct{ Tabs []tabResult }
			drv.do(t, map[string]any{"kind": "clients", "urls": urls, "timeoutMs": 60000}, 120*time.Second, &res)
			t.Logf("%d tabs of Chromium %s done in %v; %s", len(res.Tabs), drv.browser, time.Since(start).Round(time.Millisecond), timings(res.Tabs))
			if len(res.Tabs) != tabsPerMode {
				t.Fatalf("got %d tab results, want %d", len(res.Tabs), tabsPerMode)
			}
			perBackend := map[string]int{}
			for _, tab := range res.Tabs {
				if backend := checkTab(t, tab, tc.initial, tc.final); backend != "" {
					perBackend[backend]++
				}
			}
			if t.Failed() {
				return
			}
			t.Logf("tabs per backend: %v", perBackend)
			if len(perBackend) < 2 {
				t.Errorf("all %d tabs landed on one backend %v: new sessions are not spread", tabsPerMode, perBackend)
			}
			checkBackendLogs(t, c.backends, marks, res.Tabs, tc.initial, tc.mode == "upgrade")
		})
	}
}

// checkTab asserts what one tab saw and returns the backend it was on ("" after a failure).
func checkTab(t *testing.T, tab tabResult, initial, final string) string {
	t.Helper()
	if len(tab.Errors) > 0 {
		t.Error(testkit.RedactSIDs(fmt.Sprintf("tab %s: errors %q (acks %d, partial %s, console %q)", tab.Tab, tab.Errors, len(tab.Acks), tab.Partial, tab.Console)))
		return ""
	}
	if len(tab.Acks) != echoesPerTab {
		t.Errorf("tab %s: %d acks, want %d", tab.Tab, len(tab.Acks), echoesPerTab)
		return ""
	}
	if tab.Whoami == nil {
		t.Errorf("tab %s: no whoami answer", tab.Tab)
		return ""
	}
	backend := tab.Whoami.Backend
	for i, a := range tab.Acks {
		if a.Backend != backend {
			t.Errorf("tab %s: echo %d answered by %q, whoami by %q: the session moved between backends", tab.Tab, i, a.Backend, backend)
		}
		if !a.Intact || a.I != i {
			t.Errorf("tab %s: echo %d came back altered (i=%d)", tab.Tab, i, a.I)
		}
	}
	if tab.FinalTransport != final || tab.Whoami.Transport != final {
		t.Errorf("tab %s: final transport browser %q, backend %q, want %q", tab.Tab, tab.FinalTransport, tab.Whoami.Transport, final)
	}
	if len(tab.Disconnects) > 0 {
		t.Errorf("tab %s: disconnected before the end: %q", tab.Tab, tab.Disconnects)
	}
	// A polling handshake is an HTTP response: the proxy tags the sid in it, TAG(3) + CHECK(1) + "." +
	// SID (docs/design.md). A WebSocket-only session gets its sid inside the tunnel, untouched, and
	// never sends it back.
	raw := tab.Whoami.SID
	switch {
	case raw == "":
		t.Errorf("tab %s: the backend reported no sid", tab.Tab)
	case initial == "polling" && (!strings.HasSuffix(tab.SID, "."+raw) || len(tab.SID) != len(raw)+5):
		after, _ := testkit.RawSID(tab.SID)
		t.Errorf("tab %s: browser holds sid_hash %s (%d bytes, sid_hash %s after a tag), backend issued sid_hash %s (%d bytes): want the tagged form XXXX.<the backend's sid>",
			tab.Tab, proxy.SIDHash(tab.SID), len(tab.SID), proxy.SIDHash(after), proxy.SIDHash(raw), len(raw))
	case initial == "websocket" && tab.SID != raw:
		t.Errorf("tab %s: browser holds sid_hash %s, backend issued sid_hash %s over a WebSocket", tab.Tab, proxy.SIDHash(tab.SID), proxy.SIDHash(raw))
	}
	return backend
}

// checkBackendLogs asserts, from the backends' own logs since marks, that every tab made exactly one
// session on the backend that answered it, starting on the initial transport and upgrading when
// upgrade is set, and that no request of a session ever reached another backend.
func checkBackendLogs(t *testing.T, bs []*testkit.Backend, marks []int, tabs []tabResult, initial string, upgrade bool) {
	t.Helper()
	byName := map[string]int{}
	for i, b := range bs {
		byName[b.Name] = i
	}
	for _, tab := range tabs {
		i, ok := byName[tab.Whoami.Backend]
		if !ok {
			t.Errorf("tab %s: answered by unknown backend %q", tab.Tab, tab.Whoami.Backend)
			continue
		}
		b := bs[i]
		ev, err := b.WaitEvent(marks[i], 10*time.Second, "connection", tab.Whoami.SID)
		if err != nil {
			t.Errorf("tab %s: %s never logged the connection of sid_hash %s: %v", tab.Tab, b.Name, proxy.SIDHash(tab.Whoami.SID), err)
			continue
		}
		if ev.Transport != initial {
			t.Errorf("tab %s: session opened over %q, want %q", tab.Tab, ev.Transport, initial)
		}
		if upgrade {
			if _, err := b.WaitEvent(marks[i], 10*time.Second, "upgrade", tab.Whoami.SID); err != nil {
				t.Errorf("tab %s: %s never logged the upgrade of sid_hash %s: %v", tab.Tab, b.Name, proxy.SIDHash(tab.Whoami.SID), err)
			}
		}
	}
	sessions := 0
	for i, b := range bs {
		for _, ev := range b.Events(marks[i], "") {
			switch ev.Event {
			case "connection":
				sessions++
			case "upgrade":
				if !upgrade {
					t.Errorf("%s: unexpected upgrade of sid_hash %s", b.Name, proxy.SIDHash(ev.SID))
				}
			case "connection_error":
				// A request that comes after its session closed (a poll racing the client's close)
				// is refused by the owner: normal. Anything else is a request on a foreign backend.
				if ev.Code == 1 && ev.SID != "" && owns(b, ev.SID) {
					continue
				}
				t.Errorf("%s: connection_error code %d %q for sid_hash %q (%s): a request reached a backend that does not own its session",
					b.Name, ev.Code, ev.Message, proxy.SIDHash(ev.SID), testkit.RedactSIDs(ev.URL))
			}
		}
	}
	if sessions != len(tabs) {
		t.Errorf("backends opened %d sessions for %d tabs: %s", sessions, len(tabs), sessionsSummary(bs, marks))
	}
}

// owns reports whether b ever opened the session sid.
func owns(b *testkit.Backend, sid string) bool {
	for _, ev := range b.Events(0, "") {
		if ev.Event == "connection" && ev.SID == sid {
			return true
		}
	}
	return false
}

func sessionsSummary(bs []*testkit.Backend, marks []int) string {
	var parts []string
	for i, b := range bs {
		n := 0
		for _, ev := range b.Events(marks[i], "") {
			if ev.Event == "connection" {
				n++
			}
		}
		parts = append(parts, fmt.Sprintf("%s=%d", b.Name, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// timings summarises where the tabs spent their time (slowest tab), for the log.
func timings(tabs []tabResult) string {
	var load, conn, fin, done int
	for _, tab := range tabs {
		load, conn = max(load, tab.LoadedMs), max(conn, tab.ConnectedMs)
		fin, done = max(fin, tab.FinishedMs), max(done, tab.DoneMs)
	}
	return fmt.Sprintf("slowest tab: page loaded %dms, connected %dms, acks in %dms, result read %dms", load, conn, fin, done)
}
