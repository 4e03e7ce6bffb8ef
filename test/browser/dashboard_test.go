package browser

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// The dashboard tests run the real binary in front of three real socket.io@4 servers with live
// real client sessions, and open GET /dashboard/ of its admin listener in Chromium.

// dashCluster is a proxy with its admin listener, its backends and the sessions held through it.
type dashCluster struct {
	px    *testkit.Proxy
	bs    []*testkit.Backend
	ids   []string
	token string
}

// startDashCluster starts 3 backends (ids chat-1..3) behind sioproxy, from a config file so that
// the backends have ids and, with token set, the admin API wants it; then holds polling and
// WebSocket sessions through it.
func startDashCluster(t *testing.T, token string, polling, websocket int) *dashCluster {
	t.Helper()
	bs := testkit.StartBackends(t, 3, "b%d", "4")
	var cfg strings.Builder
	cfg.WriteString("backends:\n")
	c := &dashCluster{bs: bs, token: token}
	for i, b := range bs {
		id := fmt.Sprintf("chat-%d", i+1)
		c.ids = append(c.ids, id)
		fmt.Fprintf(&cfg, "  - id: %s\n    url: %s\n", id, b.URL())
	}
	if token != "" {
		fmt.Fprintf(&cfg, "admin:\n  token: %q\n", token)
	}
	path := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c.px = testkit.StartProxy(t, testkit.ProxySpec{Admin: testkit.FreeAddr(t), Args: []string{"-config", path, "-log-level", "warn"}})
	var holds []*testkit.Hold
	if polling > 0 {
		holds = append(holds, testkit.StartHold(t, testkit.ClientOpts{URL: c.px.URL(), Mode: "polling", N: polling}))
	}
	if websocket > 0 {
		holds = append(holds, testkit.StartHold(t, testkit.ClientOpts{URL: c.px.URL(), Mode: "websocket", N: websocket}))
	}
	for _, h := range holds {
		h.WaitProgress(t, "all_connected", 60*time.Second)
	}
	want := int64(polling + websocket)
	if !testkit.WaitFor(15*time.Second, func() bool { return c.sum(t) == want }) {
		t.Fatalf("/backends counts %d sessions, want the %d held ones: %+v", c.sum(t), want, c.backends(t))
	}
	return c
}

// adminView is a backend as GET /backends shows it.
type adminView struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	State    string `json:"state"`
	Weight   int    `json:"weight"`
	Sessions int64  `json:"sessions"`
	Tunnels  int64  `json:"tunnels"`
	Tag      string `json:"tag"`
	Source   string `json:"source"`
}

func (c *dashCluster) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", c.px.AdminURL(path), nil)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *dashCluster) backends(t *testing.T) map[string]adminView {
	t.Helper()
	code, body := c.get(t, "/backends")
	var vs []adminView
	if err := json.Unmarshal([]byte(body), &vs); code != 200 || err != nil {
		t.Fatalf("GET /backends: %d %v %s", code, err, body)
	}
	out := map[string]adminView{}
	for _, v := range vs {
		out[v.ID] = v
	}
	return out
}

func (c *dashCluster) sum(t *testing.T) int64 {
	var n int64
	for _, v := range c.backends(t) {
		n += v.Sessions
	}
	return n
}

// pageRow is one row of the page's backends table, as its DOM shows it.
type pageRow struct {
	ID, Status, State, Source, Address, Tag string
	Sessions, Tunnels, Weight, InFlight     int64
}

const rowsJS = `[...document.querySelectorAll('#backends tbody tr[data-id]')].map((tr) => {
  const f = (n) => tr.querySelector('[data-field="' + n + '"]');
  return { ID: tr.dataset.id, Status: tr.dataset.status, State: f('status').textContent.trim(),
    Source: f('source').textContent.trim(), Address: tr.querySelector('.addr').textContent.trim(),
    Tag: f('tag').textContent.trim(), Sessions: +f('sessions').dataset.value, Tunnels: +f('tunnels').dataset.value,
    Weight: +f('weight').dataset.value, InFlight: +f('in_flight').dataset.value };
})`

func rows(p *page) map[string]pageRow {
	var rs []pageRow
	p.eval(rowsJS, &rs)
	out := map[string]pageRow{}
	for _, r := range rs {
		out[r.ID] = r
	}
	return out
}

// diff says how the page's rows differ from /backends ("" when they agree).
func diff(page map[string]pageRow, api map[string]adminView) string {
	if len(page) != len(api) {
		return fmt.Sprintf("page has %d rows, /backends %d backends", len(page), len(api))
	}
	for id, v := range api {
		r, ok := page[id]
		switch {
		case !ok:
			return "no row for " + id
		case r.Sessions != v.Sessions || r.Tunnels != v.Tunnels:
			return fmt.Sprintf("%s: page %d sessions %d tunnels, /backends %d and %d", id, r.Sessions, r.Tunnels, v.Sessions, v.Tunnels)
		case r.Address != v.Address || r.Source != v.Source || r.Tag != v.Tag || r.Weight != int64(v.Weight):
			return fmt.Sprintf("%s: page %+v, /backends %+v", id, r, v)
		case (r.Status == "draining") != (v.State == "draining"):
			return fmt.Sprintf("%s: page says %q, /backends %q", id, r.State, v.State)
		}
	}
	return ""
}

// waitAgree waits until the page's rows agree with /backends.
func waitAgree(t *testing.T, p *page, c *dashCluster, what string) map[string]pageRow {
	t.Helper()
	var last string
	var got map[string]pageRow
	if !testkit.WaitFor(15*time.Second, func() bool {
		got = rows(p)
		last = diff(got, c.backends(t))
		return last == ""
	}) {
		t.Fatalf("%s: the page does not agree with /backends after 15 s: %s", what, last)
	}
	return got
}

func (c *dashCluster) client(t *testing.T, path string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(c.px.URL() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", testkit.RedactSIDs(path), testkit.RedactURLError(err))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

const rateJS = `+document.querySelector('%s').dataset.value > 0`

// TestDashboard opens the dashboard against live sessions: a row per backend agreeing with
// /backends, live rates and chart, a drain with deadline and rate clicked on the page, 503s and
// undrains, the phone layout, and the page's word when the proxy stops answering.
func TestDashboard(t *testing.T) {
	drv := browserDriver(t)
	c := startDashCluster(t, "", 6, 6)
	shots := testkit.LogDir(t)

	p := openPage(t, drv, c.px.AdminURL("/dashboard/"), 1280, 900)
	p.wait(`document.querySelector('#conn').dataset.state === 'live' && document.querySelectorAll('#backends tbody tr[data-id]').length === 3`,
		20*time.Second, nil, "the page never showed 3 backends live")
	got := waitAgree(t, p, c, "at first")
	for _, id := range c.ids {
		if r := got[id]; r.Status != "active" || r.Source != "static" || r.State != "active" {
			t.Errorf("row %s: %+v, want an active static backend", id, r)
		}
	}
	var total string
	p.eval(`document.querySelector('#total-sessions').textContent`, &total)
	if total != "12" {
		t.Errorf("total sessions on the page: %q, want 12", total)
	}

	// Incidents: new sessions and unknown sids show as rates within a few polls.
	if s := testkit.RunClients(t, testkit.ClientOpts{URL: c.px.URL(), Mode: "polling", N: 3, Emits: 1}); s.OK != 3 {
		t.Fatalf("3 extra sessions: %d ok", s.OK)
	}
	p.wait(fmt.Sprintf(rateJS, "#rate-handshakes"), 15*time.Second, nil, "handshakes/s stayed 0 after 3 new sessions")
	for range 5 {
		if code := c.client(t, "/socket.io/?EIO=4&transport=polling&sid=nosuchsession"); code != 400 {
			t.Fatalf("unknown sid: %d, want 400", code)
		}
	}
	p.wait(fmt.Sprintf(rateJS, "#rate-sid-unknown"), 15*time.Second, nil, `"Session ID unknown"/s stayed 0 after 5 of them`)
	p.wait(`[...document.querySelectorAll('#chart path.line[data-id]')].filter((e) => e.getAttribute('d').includes('L')).length === 3`,
		15*time.Second, nil, "the chart has no line of several samples per backend")

	// A drain with deadline and rate, clicked on the page: draining in /backends and on the page,
	// then its sessions are closed and reconnect elsewhere.
	if !testkit.WaitFor(15*time.Second, func() bool { return c.sum(t) == 12 }) {
		t.Fatalf("the 3 extra sessions did not end: %+v", c.backends(t))
	}
	victim := ""
	for id, v := range c.backends(t) {
		if victim == "" || v.Sessions > c.backends(t)[victim].Sessions {
			victim = id
		}
	}
	row := `#backends tr[data-id="` + victim + `"] `
	p.click(row + "button.drain")
	p.wait(`document.querySelector('#drain-dialog').open`, 5*time.Second, nil, "no drain dialog")
	p.fill("#drain-deadline", "1s")
	p.fill("#drain-rate", "50")
	p.click("#drain-ok")
	if !testkit.WaitFor(5*time.Second, func() bool { return c.backends(t)[victim].State == "draining" }) {
		t.Fatalf("%s is not draining in /backends after the click: %+v", victim, c.backends(t)[victim])
	}
	p.wait(`document.querySelector('`+row+`').dataset.status === 'draining'`, 10*time.Second, nil, victim+" never showed as draining")
	if !testkit.WaitFor(30*time.Second, func() bool {
		bs := c.backends(t)
		return bs[victim].Sessions == 0 && c.sum(t) == 12
	}) {
		t.Fatalf("after the drain's 1 s deadline, %s keeps sessions or they did not come back elsewhere: %+v", victim, c.backends(t))
	}
	got = waitAgree(t, p, c, "after the drain")
	if got[victim].Sessions != 0 || !strings.HasPrefix(got[victim].State, "draining") {
		t.Errorf("row %s after the drain: %+v", victim, got[victim])
	}
	p.screenshot(filepath.Join(shots, "dashboard.png"))

	// Drain the other two from the page, without deadline: a new session gets 503, which shows.
	for _, id := range c.ids {
		if id == victim {
			continue
		}
		r := `#backends tr[data-id="` + id + `"] `
		p.click(r + "button.drain")
		p.wait(`document.querySelector('#drain-dialog').open`, 5*time.Second, nil, "no drain dialog")
		p.fill("#drain-deadline", "")
		p.click("#drain-ok")
		p.wait(`document.querySelector('`+r+`').dataset.status === 'draining'`, 10*time.Second, nil, id+" never showed as draining")
	}
	for id, v := range c.backends(t) {
		if v.State != "draining" {
			t.Fatalf("%s is %s after its drain click", id, v.State)
		}
	}
	for range 3 {
		if code := c.client(t, "/socket.io/?EIO=4&transport=polling"); code != 503 {
			t.Fatalf("handshake with every backend draining: %d, want 503", code)
		}
	}
	p.wait(fmt.Sprintf(rateJS, "#rate-unavailable"), 15*time.Second, nil, "503/s stayed 0 after three 503s")
	if _, metrics := c.get(t, "/metrics"); !strings.Contains(metrics, `sioproxy_unavailable_total{reason="no_backends"} 3`) {
		t.Errorf("/metrics does not count the three 503s")
	}

	// Undrain all three from the page: active in /backends, slow-starting on the page.
	for _, id := range c.ids {
		p.click(`#backends tr[data-id="` + id + `"] button.undrain`)
	}
	if !testkit.WaitFor(10*time.Second, func() bool {
		for _, v := range c.backends(t) {
			if v.State != "active" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every backend is active after the undrain clicks: %+v", c.backends(t))
	}
	var ramp string
	p.wait(`[...document.querySelectorAll('#backends tr[data-status="slow_start"] [data-field="status"]')].map((e) => e.textContent).join(',')`,
		10*time.Second, &ramp, "no undrained backend shows its slow start")
	if !regexp.MustCompile(`^slow start \d+%`).MatchString(ramp) {
		t.Errorf("slow start shown as %q", ramp)
	}
	waitAgree(t, p, c, "after the undrains")
	if errs := p.errors(); len(errs) > 0 {
		t.Errorf("the page logged errors: %q", errs)
	}

	// A phone: one column, no sideways scrolling, rows as cards.
	p.viewport(390, 844)
	var layout struct {
		Overflow bool
		Display  string
	}
	p.wait(`(() => { const tr = document.querySelector('#backends tbody tr'); return { Overflow: document.documentElement.scrollWidth > innerWidth,
	  Display: getComputedStyle(tr).display }; })()`, 5*time.Second, &layout, "no layout")
	if layout.Overflow || layout.Display != "block" {
		t.Errorf("phone layout: scrolls sideways %v, rows displayed %q (want block cards)", layout.Overflow, layout.Display)
	}
	p.screenshot(filepath.Join(shots, "dashboard-phone.png"))
	p.viewport(1280, 900)

	// The proxy stops answering (stopped, then gone): the page says so, and recovers in between.
	if err := c.px.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	p.wait(`document.querySelector('#conn').dataset.state === 'down' && document.querySelector('#conn').textContent.includes('not answering')`,
		15*time.Second, nil, "the page did not say that the stopped proxy stops answering")
	t.Logf("stopped proxy shown as not answering after %v", time.Since(stopped).Round(100*time.Millisecond))
	if err := c.px.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	p.wait(`document.querySelector('#conn').dataset.state === 'live'`, 15*time.Second, nil, "the page did not come back live after SIGCONT")
	c.px.Kill()
	p.wait(`document.querySelector('#conn').dataset.state === 'down'`, 15*time.Second, nil, "the page did not notice the proxy gone")
	t.Logf("screenshots: %s, %s", filepath.Join(shots, "dashboard.png"), filepath.Join(shots, "dashboard-phone.png"))
}

// TestDashboardToken: with admin.token set, the page asks for the token, refuses a wrong one, works
// once the right one is typed (and after a reload, without asking again); nothing mutates without it.
func TestDashboardToken(t *testing.T) {
	drv := browserDriver(t)
	token := fmt.Sprintf("tok-%d", time.Now().UnixNano())
	c := startDashCluster(t, token, 3, 0)

	p := openPage(t, drv, c.px.AdminURL("/dashboard/"), 1280, 900)
	p.wait(`!document.querySelector('#auth').hidden && document.querySelector('#conn').dataset.state === 'auth'`,
		20*time.Second, nil, "the page did not ask for the token")
	var n int
	p.eval(`document.querySelector('#main').hidden ? document.querySelectorAll('#backends tbody tr').length : -1`, &n)
	if n != 0 {
		t.Fatalf("the page shows data without the token (%d rows, or main visible)", n)
	}
	// What the page's origin can send without the token changes nothing.
	var codes []int
	p.eval(`(async () => {
	  const out = [];
	  for (const h of [{}, { Authorization: 'Bearer wrong' }]) {
	    for (const path of ['/backends/chat-1/drain', '/backends/chat-2/drain?deadline=1s&rate=5', '/reload']) {
	      out.push((await fetch(path, { method: 'POST', headers: h })).status);
	    }
	  }
	  return out;
	})()`, &codes)
	for _, code := range codes {
		if code != 401 {
			t.Errorf("mutating call without the right token: %v, want 401 each", codes)
			break
		}
	}
	for id, v := range c.backends(t) {
		if v.State != "active" {
			t.Fatalf("%s is %s after calls without the token", id, v.State)
		}
	}

	p.fill("#token", "wrong")
	p.click("#token-form button")
	p.wait(`document.querySelector('#auth-msg').textContent.includes('refused') && !document.querySelector('#auth').hidden`,
		10*time.Second, nil, "a wrong token was not refused on the page")
	p.fill("#token", token)
	p.click("#token-form button")
	p.wait(`document.querySelector('#conn').dataset.state === 'live' && document.querySelectorAll('#backends tbody tr[data-id]').length === 3`,
		15*time.Second, nil, "the page did not go live with the right token")
	waitAgree(t, p, c, "with the token")

	p.click(`#backends tr[data-id="chat-2"] button.drain`)
	p.wait(`document.querySelector('#drain-dialog').open`, 5*time.Second, nil, "no drain dialog")
	p.click("#drain-ok")
	if !testkit.WaitFor(5*time.Second, func() bool { return c.backends(t)["chat-2"].State == "draining" }) {
		t.Fatalf("chat-2 is not draining after the click with the token: %+v", c.backends(t)["chat-2"])
	}
	p.wait(`document.querySelector('#backends tr[data-id="chat-2"]').dataset.status === 'draining'`, 10*time.Second, nil, "chat-2 not draining on the page")

	// The token is asked once: a reload of the tab goes live at once.
	p.eval(`location.reload()`, nil)
	p.wait(`document.querySelector('#conn') && document.querySelector('#conn').dataset.state === 'live' && document.querySelector('#auth').hidden`,
		15*time.Second, nil, "after a reload the page asked for the token again")
	if errs := p.errors(); len(errs) > 0 {
		// The 401s of the calls above are logged by the browser as failed loads; nothing else may be.
		for _, e := range errs {
			if !strings.Contains(e, "401") {
				t.Errorf("the page logged an error: %q", e)
			}
		}
	}
}

// TestAdminRefusesCrossSite: a page of another origin, in a real browser on the operator's machine,
// posts forms and no-cors fetches to the loopback admin API (which, with no token, serves loopback
// callers): each is refused and no backend is drained.
func TestAdminRefusesCrossSite(t *testing.T) {
	drv := browserDriver(t)
	c := startDashCluster(t, "", 0, 0)
	foreign := foreignPage(t)
	p := openPage(t, drv, foreign, 1024, 700)

	admin := "http://" + c.px.Admin
	p.eval(`(async () => {
	  await fetch('`+admin+`/backends/chat-1/drain', { method: 'POST', mode: 'no-cors' }).catch(() => {});
	  await fetch('`+admin+`/backends/chat-2/drain?deadline=1s&rate=5', { method: 'POST', mode: 'no-cors', body: 'x' }).catch(() => {});
	  return true;
	})()`, nil)
	for _, enctype := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data"} {
		p.eval(`(() => {
		  const f = document.createElement('form');
		  f.method = 'POST';
		  f.enctype = '`+enctype+`';
		  f.action = '`+admin+`/backends/chat-3/drain';
		  const i = document.createElement('input');
		  i.name = 'deadline';
		  i.value = '1s';
		  f.appendChild(i);
		  document.body.appendChild(f);
		  f.submit();
		  return true;
		})()`, nil)
		// The form navigates the page to the admin API's answer: the refusal, not a drain.
		var body string
		p.wait(`location.href.startsWith('`+admin+`') && document.readyState === 'complete' && document.body && document.body.innerText`,
			15*time.Second, &body, "the form post got no answer from the admin API")
		if !strings.Contains(body, "refused") || strings.Contains(body, "draining") {
			t.Errorf("form post (%s) answered %q, want a refusal", enctype, body)
		}
		p.eval(`location.href = '`+foreign+`'`, nil)
		p.wait(`location.href === '`+foreign+`' && document.readyState === 'complete'`, 10*time.Second, nil, "back to the foreign page")
	}
	for id, v := range c.backends(t) {
		if v.State != "active" {
			t.Errorf("%s is %s after cross-site requests", id, v.State)
		}
	}
	// The same request from a client that is not a browser is served (the refusal is the browser's).
	req, _ := http.NewRequest("POST", admin+"/backends/chat-1/drain", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || c.backends(t)["chat-1"].State != "draining" {
		t.Fatalf("loopback drain without browser headers: %d", resp.StatusCode)
	}
}

// foreignPage serves a blank page on an origin of its own (another port of 127.0.0.1: same site,
// not same origin, as any local web app open in the operator's browser) and returns its URL.
func foreignPage(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>elsewhere</title><p>another site</p>")
	})
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

// TestDashboardMirror: with a mirror configured (one primary, one shadow that answers the "diff"
// event differently, both test/mirror/server.js), the page's mirror panel enables it with a sample,
// shows the report with the divergent event first, refuses a bad sample with the API's reason, and
// disables it; each action shows in GET /mirror/report.
func TestDashboardMirror(t *testing.T) {
	drv := browserDriver(t)
	mirrorDir := filepath.Join(testkit.Root(), "test", "mirror")
	server := func(name, role string) string {
		port := testkit.FreePort(t)
		p := testkit.Start(t, testkit.Command{Name: name, Dir: mirrorDir, Bin: testkit.Node(),
			Args: []string{"server.js", "--port", fmt.Sprint(port), "--name", name, "--role", role, "--version", "4"}})
		if _, _, err := p.WaitLine(0, testkit.BackendReadyTimeout, testkit.HasEvent("ready")); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, p.Tail(20))
		}
		return fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	primary, shadow := server("primary", "primary"), server("shadow", "shadow")
	cfg := fmt.Sprintf("backends:\n  - id: primary-1\n    url: %s\nmirror:\n  enabled: false\n  backends:\n    - url: %s\n", primary, shadow)
	path := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &dashCluster{px: testkit.StartProxy(t, testkit.ProxySpec{Admin: testkit.FreeAddr(t), Args: []string{"-config", path, "-log-level", "warn"}})}
	type report struct {
		Enabled  bool    `json:"enabled"`
		Sample   float64 `json:"sample"`
		Sessions struct {
			Mirrored int `json:"mirrored"`
		} `json:"sessions"`
		Divergent []struct {
			Event     string `json:"event"`
			Different int    `json:"different"`
		} `json:"divergent"`
	}
	mirrorReport := func() report {
		code, body := c.get(t, "/mirror/report")
		var r report
		if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil {
			t.Fatalf("GET /mirror/report: %d %v %s", code, err, body)
		}
		return r
	}

	p := openPage(t, drv, c.px.AdminURL("/dashboard/"), 1280, 900)
	p.wait(`!document.querySelector('#mirror').hidden && document.querySelector('#mirror-state').dataset.enabled === 'false'`,
		20*time.Second, nil, "the page shows no disabled mirror")

	p.fill("#mirror-sample", "0.5")
	p.click("#mirror-enable")
	if !testkit.WaitFor(5*time.Second, func() bool { r := mirrorReport(); return r.Enabled && r.Sample == 0.5 }) {
		t.Fatalf("after Enable with sample 0.5: %+v", mirrorReport())
	}
	p.fill("#mirror-sample", "2")
	p.click("#mirror-enable")
	var msg string
	p.wait(`document.querySelector('#mirror-msg').textContent`, 10*time.Second, &msg, "no message for a sample of 2")
	if !strings.Contains(msg, "sample") || mirrorReport().Sample != 0.5 {
		t.Errorf("sample 2: page says %q, report %+v; want the API's reason and the sample kept", msg, mirrorReport())
	}
	p.fill("#mirror-sample", "1")
	p.click("#mirror-enable")
	if !testkit.WaitFor(5*time.Second, func() bool { return mirrorReport().Sample == 1 }) {
		t.Fatalf("after Enable with sample 1: %+v", mirrorReport())
	}

	// Sessions through the proxy: each sends a "diff" event, which the shadow answers otherwise.
	cl := testkit.Start(t, testkit.Command{Name: "mirror clients", Dir: mirrorDir, Bin: testkit.Node(),
		Args: []string{"clients.js", "--url", c.px.URL(), "--mode", "polling", "--n", "4", "--emits", "15", "--version", "4", "--tag", "dash"}})
	if err := cl.Wait(2 * time.Minute); err != nil {
		t.Fatalf("mirror clients: %v\n%s", err, cl.Tail(20))
	}
	if !testkit.WaitFor(15*time.Second, func() bool { r := mirrorReport(); return len(r.Divergent) > 0 && r.Sessions.Mirrored == 4 }) {
		t.Fatalf("the report shows no divergence after 4 mirrored sessions: %+v", mirrorReport())
	}
	var first struct{ Event, Mirrored string }
	p.wait(`(() => { const td = document.querySelector('#mirror-divergent tbody tr td');
	  const m = document.querySelector('#mirror-totals dd[data-key="sessions mirrored"]');
	  return td && m && m.textContent === '4' && { Event: td.textContent, Mirrored: m.textContent }; })()`,
		15*time.Second, &first, "the page shows no divergent event")
	if want := mirrorReport().Divergent[0].Event; first.Event != want || want != "diff" {
		t.Errorf("first divergent event on the page %q, in the report %q; want diff", first.Event, want)
	}
	p.screenshot(filepath.Join(testkit.LogDir(t), "dashboard-mirror.png"))

	p.click("#mirror-disable")
	if !testkit.WaitFor(5*time.Second, func() bool { return !mirrorReport().Enabled }) {
		t.Fatal("the mirror is still enabled after Disable")
	}
	p.wait(`document.querySelector('#mirror-state').dataset.enabled === 'false'`, 10*time.Second, nil, "the page still shows the mirror enabled")
	if errs := p.errors(); len(errs) > 0 {
		for _, e := range errs {
			if !strings.Contains(e, "400") { // the refused sample
				t.Errorf("the page logged an error: %q", e)
			}
		}
	}
}
