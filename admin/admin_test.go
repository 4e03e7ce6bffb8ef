package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sioproxy/balancer"
	"sioproxy/proxy"
)

type fakeController struct {
	mu       sync.Mutex
	drained  map[string]time.Duration
	rates    map[string]float64
	calls    int // Drain, Undrain and Reload calls
	reloadOK bool
	ready    bool
}

func (f *fakeController) Drain(id string, d time.Duration, rate float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if id != "a" && id != "b" && id != "http://127.0.0.1:3/x" {
		return fmt.Errorf("%w: %s", ErrUnknownBackend, id)
	}
	f.drained[id] = d
	f.rates[id] = rate
	return nil
}

func (f *fakeController) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}
func (f *fakeController) Undrain(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	delete(f.drained, id)
	return nil
}
func (f *fakeController) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if !f.reloadOK {
		return errors.New("c.yaml:3: proxy.x: unknown key")
	}
	return nil
}
func (f *fakeController) Ready() (bool, string)      { return f.ready, "no eligible backend" }
func (f *fakeController) SessionCount(id string) int { return len(id) }

func newTestAPI(t *testing.T, token string) (*httptest.Server, *fakeController, *Metrics, *balancer.Balancer) {
	bal := balancer.New(balancer.NewRoundRobin())
	bal.Update([]balancer.Spec{{ID: "a", Addr: "127.0.0.1:1", Weight: 1, State: balancer.Active, Source: "static"},
		{ID: "b", Addr: "127.0.0.1:2", Weight: 2, State: balancer.Draining, Source: "consul"}})
	fc := &fakeController{drained: map[string]time.Duration{}, rates: map[string]float64{}, ready: true}
	m := NewMetrics(bal)
	stop := make(chan struct{})
	srv := httptest.NewServer(Handler(Options{Balancer: bal, Controller: fc, Metrics: m, Token: token, Stop: stop}))
	t.Cleanup(func() {
		close(stop)
		srv.Close()
	})
	return srv, fc, m, bal
}

func call(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBackendsAndDrain(t *testing.T) {
	srv, fc, _, bal := newTestAPI(t, "")
	bal.Snapshot().ByID("a").Sessions.Add(3)
	code, body := call(t, "GET", srv.URL+"/backends", "")
	var views []BackendView
	if err := json.Unmarshal([]byte(body), &views); code != 200 || err != nil || len(views) != 2 {
		t.Fatalf("GET /backends: %d %v %s", code, err, body)
	}
	if views[0].ID != "a" || views[0].Sessions != 3 || views[0].State != "active" || views[1].State != "draining" || views[1].Weight != 2 {
		t.Fatalf("views: %+v", views)
	}
	if code, _ := call(t, "POST", srv.URL+"/backends/a/drain?deadline=30s&rate=5", ""); code != 200 || fc.drained["a"] != 30*time.Second {
		t.Fatalf("drain: %d %v", code, fc.drained)
	}
	if code, _ := call(t, "POST", srv.URL+"/backends/zz/drain", ""); code != 404 {
		t.Fatalf("drain unknown: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/backends/a/drain?deadline=soon", ""); code != 400 {
		t.Fatalf("drain with bad deadline: %d", code)
	}
	if code, _ := call(t, "POST", srv.URL+"/backends/a/undrain", ""); code != 200 || len(fc.drained) != 0 {
		t.Fatalf("undrain: %d %v", code, fc.drained)
	}
	if code, _ := call(t, "GET", srv.URL+"/backends/a/drain", ""); code != 405 {
		t.Fatalf("GET on drain: %d, want 405", code)
	}
}

func TestTokenAndReadiness(t *testing.T) {
	srv, fc, _, _ := newTestAPI(t, "s3cret")
	if code, _ := call(t, "GET", srv.URL+"/backends", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := call(t, "GET", srv.URL+"/backends", "wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _ := call(t, "GET", srv.URL+"/healthz", ""); code != 200 {
		t.Fatalf("healthz needs no token: %d", code)
	}
	if code, _ := call(t, "GET", srv.URL+"/readyz", "s3cret"); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	fc.ready = false
	if code, body := call(t, "GET", srv.URL+"/readyz", "s3cret"); code != 503 || !strings.Contains(body, "no eligible backend") {
		t.Fatalf("readyz not ready: %d %s", code, body)
	}
	if code, body := call(t, "POST", srv.URL+"/reload", "s3cret"); code != 400 || !strings.Contains(body, "c.yaml:3") {
		t.Fatalf("bad reload: %d %s", code, body)
	}
	fc.reloadOK = true
	if code, _ := call(t, "POST", srv.URL+"/reload", "s3cret"); code != 200 {
		t.Fatalf("reload: %d", code)
	}
	if code, body := call(t, "GET", srv.URL+"/sessions?backend=b", "s3cret"); code != 200 || !strings.Contains(body, `"sessions": 1`) {
		t.Fatalf("sessions: %d %s", code, body)
	}
	if code, _ := call(t, "GET", srv.URL+"/sessions?backend=nope", "s3cret"); code != 404 {
		t.Fatalf("sessions of unknown backend: %d", code)
	}
}

func TestMutatingNeedsLoopbackWithoutToken(t *testing.T) {
	a := &api{o: Options{}}
	called := false
	h := a.auth(true, func(http.ResponseWriter, *http.Request) { called = true })
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/reload", nil)
	req.RemoteAddr = "192.0.2.10:5555"
	h(rec, req)
	if rec.Code != 403 || called {
		t.Fatalf("remote caller: %d called=%v", rec.Code, called)
	}
	req.RemoteAddr = "127.0.0.1:5555"
	h(httptest.NewRecorder(), req)
	if !called {
		t.Fatal("loopback caller refused")
	}
}

func TestMetrics(t *testing.T) {
	srv, _, m, bal := newTestAPI(t, "")
	m.Request(proxy.KindPoll, 200, 3*time.Millisecond)
	m.Request(proxy.KindPoll, 200, time.Millisecond)
	m.Request(proxy.KindHandshake, 503, time.Millisecond)
	m.Request(proxy.KindUpgrade, 101, time.Millisecond)
	m.SIDUnknown()
	m.Handshake("a")
	m.Unavailable(balancer.AllFull)
	m.Unavailable(balancer.NoBackends)
	m.Unavailable(balancer.NoBackends)
	bal.Snapshot().ByID("b").Tunnels.Add(4)
	code, body := call(t, "GET", srv.URL+"/metrics", "")
	for _, want := range []string{
		`sioproxy_requests_total{code="2xx",kind="poll"} 2`,
		`sioproxy_requests_total{code="5xx",kind="handshake"} 1`,
		`sioproxy_requests_total{code="1xx",kind="upgrade"} 1`,
		`sioproxy_sid_unknown_total 1`,
		`sioproxy_handshakes_total{backend="a"} 1`,
		`sioproxy_unavailable_total{reason="all_full"} 1`,
		`sioproxy_unavailable_total{reason="no_backends"} 2`,
		`sioproxy_backend_tunnels{backend="b"} 4`,
		`sioproxy_backend_active{backend="b"} 0`,
		`sioproxy_request_duration_seconds_count{kind="poll"} 2`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func BenchmarkMetricsRequest(b *testing.B) {
	m := NewMetrics(balancer.New(balancer.NewRoundRobin()))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Request(proxy.KindPoll, 200, time.Millisecond)
	}
}

// Every metric the shipped Grafana dashboard queries must exist.
func TestDashboardMetricsExist(t *testing.T) {
	data, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	srv, _, m, _ := newTestAPI(t, "")
	if err := m.RegisterDiscovery("consul", func() bool { return true }, func() time.Duration { return time.Second }); err != nil {
		t.Fatal(err)
	}
	m.Request(proxy.KindHandshake, 200, time.Millisecond)
	m.SIDUnknown()
	m.Handshake("a")
	m.Reload("ok")
	_, body := call(t, "GET", srv.URL+"/metrics", "")
	names := regexp.MustCompile(`sioproxy_[a-z_]+`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, name := range names.FindAllString(tg.Expr, -1) {
				n++
				base := strings.TrimSuffix(name, "_bucket")
				if !strings.Contains(body, "\n"+base) && !strings.Contains(body, "\n"+name) {
					t.Errorf("dashboard queries %s, which /metrics does not export", name)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("dashboard has only %d metric references", n)
	}
}

// A provider's gauges are registered once; a second registration is an error, never a panic (a
// reload that re-registered them used to kill the process).
func TestRegisterDiscoveryTwice(t *testing.T) {
	_, _, m, _ := newTestAPI(t, "")
	up := func() bool { return true }
	if err := m.RegisterDiscovery("consul", up, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterDiscovery("consul", up, nil); err == nil {
		t.Fatal("second registration of the consul gauges succeeded")
	}
	if err := m.RegisterDiscovery("kubernetes", up, nil); err != nil {
		t.Fatalf("another provider: %v", err)
	}
}
