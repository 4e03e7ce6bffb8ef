package browser

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

// demoShot is where TestDemoPage leaves a screenshot of a tab (for a human to look at).
const demoShot = "/tmp/sioproxy-demo.png"

// TestDemoPage opens the page of `sioproxy demo` in three tabs, checks that each tab upgrades to a
// WebSocket on some backend, and that a chat message typed in the first tab reaches every tab,
// across backends.
func TestDemoPage(t *testing.T) {
	const tabs = 3
	drv := browserDriver(t)
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	p := testkit.Start(t, testkit.Command{Name: "sioproxy demo", Dir: testkit.Root(), Bin: testkit.ProxyBin(),
		Args: []string{"demo", "-listen", addr, "-admin-listen", admin, "-log-level", "info"}})
	testkit.WaitTCP(t, p, addr, testkit.ProxyReadyTimeout)
	// The demo prints the dashboard's address beside its own, and the dashboard is there.
	dashboard := "http://" + admin + "/dashboard/"
	if _, _, err := p.WaitLine(0, 10*time.Second, func(l string) bool {
		return strings.Contains(l, "http://"+addr+"/") && strings.Contains(l, dashboard)
	}); err != nil {
		t.Fatalf("the demo did not print its address and the dashboard's (%s): %v\n%s", dashboard, err, p.Tail(10))
	}
	testkit.WaitTCP(t, p, admin, testkit.ProxyReadyTimeout)
	if resp, err := http.Get(dashboard); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", dashboard, resp, err)
	} else {
		resp.Body.Close()
	}

	message := "hello from tab 1 at " + strconv.FormatInt(time.Now().UnixNano(), 36)
	var res struct {
		Tabs []struct {
			Tab        int    `json:"tab"`
			Error      string `json:"error"`
			Backend    string `json:"backend"`
			Transport  string `json:"transport"`
			SID        string `json:"sid"`
			SawMessage bool   `json:"sawMessage"`
			Messages   string `json:"messages"`
		} `json:"tabs"`
	}
	start := time.Now()
	drv.do(t, map[string]any{"kind": "demo", "url": "http://" + addr + "/", "tabs": tabs,
		"message": message, "screenshot": demoShot, "timeoutMs": 30000}, 90*time.Second, &res)
	t.Logf("%d demo tabs done in %v; screenshot %s", len(res.Tabs), time.Since(start).Round(time.Millisecond), demoShot)
	if len(res.Tabs) != tabs {
		t.Fatalf("got %d tab results, want %d", len(res.Tabs), tabs)
	}
	backends := map[string]int{}
	for i, tab := range res.Tabs {
		t.Logf("tab %d: backend %q transport %q sid_hash %s", i+1, tab.Backend, tab.Transport, proxy.SIDHash(tab.SID)) // never a raw sid in a log
		if tab.Error != "" {
			t.Errorf("tab %d: %s (backend %q, transport %q)", i+1, testkit.RedactSIDs(tab.Error), tab.Backend, tab.Transport)
		}
		if tab.Backend == "" || tab.Transport != "websocket" || tab.SID == "" {
			t.Errorf("tab %d: backend %q transport %q sid_hash %q, want a backend, websocket and a sid", i+1, tab.Backend, tab.Transport, proxy.SIDHash(tab.SID))
		}
		if !tab.SawMessage {
			t.Errorf("tab %d (backend %q) never showed the message typed in tab 1 (backend %q); #messages: %q",
				i+1, tab.Backend, res.Tabs[0].Backend, tab.Messages)
		}
		backends[tab.Backend]++
	}
	if len(backends) < 2 {
		t.Errorf("the %d tabs all landed on one backend %v: new sessions are not spread", tabs, backends)
	}
	crossed := false
	for _, tab := range res.Tabs[1:] {
		crossed = crossed || (tab.SawMessage && tab.Backend != res.Tabs[0].Backend)
	}
	if !crossed {
		t.Errorf("no tab on another backend than tab 1 (%q) received its message: %v", res.Tabs[0].Backend, backends)
	}
}
