package admin

import (
	"encoding/json"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sioproxy/balancer"
)

// testClock is a settable clock shared by the balancer and the admin API.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func getJSON(t *testing.T, url, token string, out any) int {
	t.Helper()
	code, body := call(t, "GET", url, token)
	if code == 200 {
		if err := json.Unmarshal([]byte(body), out); err != nil {
			t.Fatalf("GET %s: %v\n%s", url, err, body)
		}
	}
	return code
}

func TestOverview(t *testing.T) {
	clk := &testClock{t: t0}
	bal := balancer.New(balancer.NewRoundRobin(), balancer.WithClock(clk.now),
		balancer.WithSlowStart(30*time.Second), balancer.WithEjection(10*time.Second, 1))
	bal.Update([]balancer.Spec{
		{ID: "a", Addr: "127.0.0.1:1", Weight: 1, State: balancer.Active, Source: "static"},
		{ID: "b", Addr: "127.0.0.1:2", Weight: 2, State: balancer.Draining, Source: "consul"},
		{ID: "c", Addr: "127.0.0.1:3", Weight: 1, State: balancer.Active, Source: "kubernetes"},
	})
	m := NewMetrics(bal)
	a, h := newAPI(Options{Balancer: bal, Controller: &fakeController{}, Metrics: m, Token: "tk", Now: clk.now})
	srv := httptest.NewServer(h)
	defer srv.Close()

	// d joins (slow start), c fails (ejected), a has sessions, and incidents happen.
	bal.Update(append(slicesOf(bal), balancer.Spec{ID: "d", Addr: "127.0.0.1:4", Weight: 4, State: balancer.Active, Source: "static"}))
	snap := bal.Snapshot()
	snap.ByID("a").Sessions.Add(3)
	snap.ByID("a").Tunnels.Add(1)
	snap.ByID("d").Sessions.Add(2)
	clk.add(6 * time.Second)
	bal.ReportFailure(snap.ByID("c"))
	for range 4 {
		m.Handshake("a")
	}
	m.SIDUnknown()
	m.SIDUnknown()
	m.Unavailable(balancer.AllFull)
	m.Reload("ok")
	m.Reload("error")
	a.sample()
	clk.add(time.Second)
	m.Handshake("d")
	snap.ByID("d").Sessions.Add(1)
	a.sample()
	clk.add(4 * time.Second)

	if code := getJSON(t, srv.URL+"/overview", "", &struct{}{}); code != 401 {
		t.Fatalf("GET /overview without the token: %d", code)
	}
	var ov Overview
	if code := getJSON(t, srv.URL+"/overview", "tk", &ov); code != 200 {
		t.Fatalf("GET /overview: %d", code)
	}
	byID := map[string]BackendStatus{}
	for _, b := range ov.Backends {
		byID[b.ID] = b
	}
	if len(byID) != 4 {
		t.Fatalf("backends: %+v", ov.Backends)
	}
	if b := byID["a"]; b.Status != "active" || b.Share != 1 || b.Sessions != 3 || b.Tunnels != 1 || b.Source != "static" || b.Address != "127.0.0.1:1" {
		t.Errorf("a: %+v", b)
	}
	if b := byID["b"]; b.Status != "draining" || b.State != "draining" || b.Source != "consul" || b.Weight != 2 {
		t.Errorf("b: %+v", b)
	}
	if b := byID["c"]; b.Status != "ejected" || !b.Ejected || b.EjectedMs != 5000 || b.Failures != 1 || b.Source != "kubernetes" {
		t.Errorf("c: %+v, want ejected for 5 s more", b)
	}
	// d joined 11 s ago into a 30 s ramp: 11/30 of its weight.
	if b := byID["d"]; b.Status != "slow_start" || math.Abs(b.Share-11.0/30) > 0.01 || b.Sessions != 3 {
		t.Errorf("d: %+v, want slow start at %.3f", b, 11.0/30)
	}
	want := Totals{Sessions: 6, Tunnels: 1, Counts: Counts{Handshakes: 5, SIDUnknown: 2, Unavailable: 1, Reloads: 2, ReloadErrors: 1}}
	if ov.Totals != want {
		t.Errorf("totals %+v, want %+v", ov.Totals, want)
	}
	// Three samples: at start (nothing yet), after the incidents, one second later.
	hv := ov.History
	if hv.Seq != 3 || hv.From != 1 || len(hv.Times) != 3 || ov.Time != clk.now().UnixMilli() || ov.Interval != 1000 || ov.Mirror {
		t.Fatalf("history %+v time %d", hv, ov.Time)
	}
	if got := hv.Sessions["d"]; len(got) != 3 || got[0] != -1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("d's sessions %v, want [absent 2 3]", got)
	}
	if hv.Handshakes[1] != 4 || hv.Handshakes[2] != 1 || hv.SIDUnknown[1] != 2 || hv.Unavailable[1] != 1 || hv.Reloads[1] != 2 {
		t.Errorf("increments: %+v", hv)
	}
	// Rates over the samples within 10 s of the newest (t0+7s): back to the first one, at t0.
	if ov.Rates.WindowSeconds != 7 || math.Abs(ov.Rates.Handshakes-5.0/7) > 1e-9 || ov.Rates.Reloads != 2 {
		t.Errorf("rates %+v", ov.Rates)
	}

	// /backends agrees with /overview.
	var views []BackendView
	if code := getJSON(t, srv.URL+"/backends", "tk", &views); code != 200 || len(views) != 4 {
		t.Fatalf("/backends: %d %v", code, views)
	}
	for _, v := range views {
		if byID[v.ID].BackendView != v {
			t.Errorf("/backends %+v but /overview %+v", v, byID[v.ID].BackendView)
		}
	}

	// Incremental: nothing new since the newest sample, then one.
	var inc Overview
	getJSON(t, srv.URL+"/overview?since=3", "tk", &inc)
	if inc.History.Seq != 3 || inc.History.From != 4 || len(inc.History.Times) != 0 || len(inc.History.Sessions) != 0 {
		t.Errorf("since=3: %+v", inc.History)
	}
	a.sample()
	getJSON(t, srv.URL+"/overview?since=3", "tk", &inc)
	if inc.History.From != 4 || len(inc.History.Times) != 1 || len(inc.History.Sessions["a"]) != 1 {
		t.Errorf("since=3 after a sample: %+v", inc.History)
	}
	for _, q := range []string{"since=x", "since=-1", "since=1&since=2", "foo=1"} {
		if code, body := call(t, "GET", srv.URL+"/overview?"+q, "tk"); code != 400 || !strings.Contains(body, "error") {
			t.Errorf("/overview?%s: %d %s", q, code, body)
		}
	}
}

func slicesOf(bal *balancer.Balancer) []balancer.Spec {
	var out []balancer.Spec
	for _, be := range bal.Snapshot().Backends {
		out = append(out, be.Spec)
	}
	return out
}

// The sampler records a sample every SampleEvery and stops with Stop.
func TestSamplerRuns(t *testing.T) {
	bal := balancer.New(balancer.NewRoundRobin())
	bal.Update([]balancer.Spec{{ID: "a", Addr: "127.0.0.1:1", Weight: 1, State: balancer.Active}})
	stop := make(chan struct{})
	a, _ := newAPI(Options{Balancer: bal, Controller: &fakeController{}, SampleEvery: time.Millisecond, Stop: stop})
	done := make(chan struct{})
	go func() {
		a.runSampler()
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for a.history.Since(0).Seq < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the sampler recorded fewer than 5 samples in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the sampler did not stop")
	}
	if v := a.history.Since(0); len(v.Sessions["a"]) != len(v.Times) {
		t.Fatalf("history %+v", v)
	}
}

func TestDashboardServed(t *testing.T) {
	srv, _, _, _ := newTestAPI(t, "tk") // the page itself needs no token: it asks for it
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) (*http.Response, string) {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/dashboard/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, `<script src="dashboard.js"`) || !strings.Contains(body, `id="backends"`) {
		t.Fatalf("GET /dashboard/: %d %q\n%.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("dashboard headers: %v", resp.Header)
	}
	for path, ctype := range map[string]string{"/dashboard/dashboard.js": "text/javascript", "/dashboard/dashboard.css": "text/css"} {
		if resp, _ := get(path); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if resp, _ := get("/dashboard"); resp.StatusCode != 301 || resp.Header.Get("Location") != "/dashboard/" {
		t.Errorf("GET /dashboard: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get("/dashboard/nope.js"); resp.StatusCode != 404 {
		t.Errorf("GET /dashboard/nope.js: %d", resp.StatusCode)
	}
}

// The page loads nothing from elsewhere: every URL in its files is relative, or the SVG namespace.
func TestDashboardSelfContained(t *testing.T) {
	abs := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	n := 0
	err := fs.WalkDir(dashboardFiles, "dashboard", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, _ := dashboardFiles.ReadFile(path)
		for _, m := range abs.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return nil
	})
	if err != nil || n != 4 {
		t.Fatalf("walked %d embedded files: %v", n, err)
	}
}

func TestDashboardURL(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"127.0.0.1:9090": "http://127.0.0.1:9090/dashboard/",
		":9090":          "http://127.0.0.1:9090/dashboard/",
		"0.0.0.0:9090":   "http://127.0.0.1:9090/dashboard/",
		"[::]:9090":      "http://127.0.0.1:9090/dashboard/",
		"[::1]:9090":     "http://[::1]:9090/dashboard/",
		"localhost:1":    "http://localhost:1/dashboard/",
	} {
		if got := DashboardURL(in); got != want {
			t.Errorf("DashboardURL(%q) = %q, want %q", in, got, want)
		}
	}
}
