package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"sioproxy/balancer"
)

// request sends method url with headers (a "Host" entry sets the Host header) and returns the status
// and body.
func request(t *testing.T, method, u string, headers map[string]string, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Every bad drain parameter gets 400 with its reason, through the HTTP API, and never reaches the
// Controller (rate=NaN used to pass and panic the process a deadline later).
func TestDrainParametersRefused(t *testing.T) {
	srv, fc, _, _ := newTestAPI(t, "")
	for _, q := range []string{"deadline=1s&rate=NaN", "deadline=1s&rate=Inf", "deadline=1s&rate=-1", "deadline=1s&rate=0",
		"deadline=-1s", "deadline=0s", "deadline=25h", "deadline=1s&rate=1e9", "deadline=1s&rate=1e-9", "rate=5",
		"deadline=1s&rate=1&rate=2", "dedline=1s", "deadline=1s;rate=1"} {
		code, body := call(t, "POST", srv.URL+"/backends/a/drain?"+q, "")
		if code != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("drain?%s: %d %s, want 400 with the reason", q, code, body)
		}
	}
	if n := fc.callCount(); n != 0 {
		t.Fatalf("the controller was called %d times for refused drains", n)
	}
	code, body := call(t, "POST", srv.URL+"/backends/a/drain?deadline=2m&rate=0.5", "")
	if code != 200 || fc.drained["a"] != 120e9 || fc.rates["a"] != 0.5 || !strings.Contains(body, `"deadline": "2m0s"`) {
		t.Fatalf("good drain: %d %s %v %v", code, body, fc.drained, fc.rates)
	}
	// An id with slashes (a backend configured by URL only) travels percent-encoded.
	if code, body := call(t, "POST", srv.URL+"/backends/"+url.PathEscape("http://127.0.0.1:3/x")+"/drain", ""); code != 200 {
		t.Fatalf("drain of an id with slashes: %d %s", code, body)
	}
	for _, p := range []string{"/backends/a/undrain?now=1", "/reload?force=1"} {
		if code, _ := call(t, "POST", srv.URL+p, ""); code != 400 {
			t.Errorf("POST %s: %d, want 400 for an unknown parameter", p, code)
		}
	}
	if code, _ := call(t, "GET", srv.URL+"/debug/pprof/profile?seconds=100000", ""); code != 400 {
		t.Errorf("profile for 100000 s: %d, want 400", code)
	}
}

type fakeMirror struct{ hits []string }

func (m *fakeMirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.hits = append(m.hits, r.Method+" "+r.URL.String())
	writeJSON(w, 200, map[string]bool{"enabled": true})
}

func TestMirrorSampleRefused(t *testing.T) {
	bal := balancer.New(balancer.NewRoundRobin())
	fm := &fakeMirror{}
	stop := make(chan struct{})
	defer close(stop)
	srv := httptest.NewServer(Handler(Options{Balancer: bal, Controller: &fakeController{}, Mirror: fm, Stop: stop}))
	defer srv.Close()
	for _, q := range []string{"sample=NaN", "sample=Inf", "sample=-0.5", "sample=1.5", "sample=", "sample=1&sample=0", "rate=1"} {
		if code, body := call(t, "POST", srv.URL+"/mirror/enable?"+q, ""); code != 400 || !strings.Contains(body, "sample") && !strings.Contains(body, "parameter") {
			t.Errorf("mirror/enable?%s: %d %s", q, code, body)
		}
	}
	if len(fm.hits) != 0 {
		t.Fatalf("refused requests reached the mirror: %v", fm.hits)
	}
	if code, _ := call(t, "POST", srv.URL+"/mirror/enable?sample=0.5", ""); code != 200 || len(fm.hits) != 1 {
		t.Fatalf("mirror/enable?sample=0.5: %d %v", code, fm.hits)
	}
}

// Mutating endpoints refuse what a page of another site can make a browser send; the dashboard's
// own same-origin calls and clients that are not browsers go through.
func TestCrossSiteRefused(t *testing.T) {
	srv, fc, _, _ := newTestAPI(t, "")
	tests := []struct {
		name    string
		headers map[string]string
		body    string
		want    int
	}{
		{"curl", nil, "", 200},
		{"dashboard", map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}, "", 200},
		{"typed address", map[string]string{"Sec-Fetch-Site": "none"}, "", 200},
		{"origin localhost", map[string]string{"Origin": "http://localhost:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:],
			"Host": "localhost:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:]}, "", 200},
		{"json body", map[string]string{"Content-Type": "application/json"}, "{}", 200},
		{"foreign origin", map[string]string{"Origin": "http://evil.example"}, "", 403},
		{"other port of loopback", map[string]string{"Origin": "http://127.0.0.1:1"}, "", 403},
		{"null origin", map[string]string{"Origin": "null"}, "", 403},
		{"origin with path", map[string]string{"Origin": srv.URL + "/x"}, "", 403},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, "", 403},
		{"same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site"}, "", 403},
		{"form urlencoded", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "a=1", 415},
		{"form multipart", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, "--x--", 415},
		{"text plain", map[string]string{"Content-Type": "Text/Plain;charset=utf-8"}, "x", 415},
		{"dns rebinding", map[string]string{"Host": "rebind.example:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:],
			"Origin": "http://rebind.example:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:], "Sec-Fetch-Site": "same-origin"}, "", 403},
		{"a name, not a browser", map[string]string{"Host": "admin.internal"}, "", 200},
	}
	for _, p := range []string{"/backends/a/drain", "/backends/a/undrain", "/reload"} {
		for _, tt := range tests {
			before := fc.callCount()
			fc.reloadOK = true
			code, body := request(t, "POST", srv.URL+p, tt.headers, tt.body)
			if code != tt.want {
				t.Errorf("%s POST %s: %d %s, want %d", tt.name, p, code, body, tt.want)
			}
			if called := fc.callCount() > before; called != (tt.want == 200) {
				t.Errorf("%s POST %s: controller called %v", tt.name, p, called)
			}
		}
	}
	// Reads are not refused (a browser does not let another site read the answer: no CORS headers).
	if code, _ := request(t, "GET", srv.URL+"/backends", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, ""); code != 200 {
		t.Errorf("cross-site GET /backends: %d", code)
	}
}

// With a token, a rebinding page still lacks the token; a named Host is fine for the dashboard.
func TestCrossSiteWithToken(t *testing.T) {
	srv, _, _, _ := newTestAPI(t, "s3cret")
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	named := map[string]string{"Authorization": "Bearer s3cret", "Host": "admin.internal:" + port,
		"Origin": "http://admin.internal:" + port, "Sec-Fetch-Site": "same-origin"}
	if code, body := request(t, "POST", srv.URL+"/backends/a/drain", named, ""); code != 200 {
		t.Fatalf("dashboard by name with the token: %d %s", code, body)
	}
	named["Origin"] = "http://evil.example"
	if code, _ := request(t, "POST", srv.URL+"/backends/a/drain", named, ""); code != 403 {
		t.Fatalf("foreign origin with the token: %d", code)
	}
	delete(named, "Authorization")
	named["Origin"] = "http://admin.internal:" + port
	if code, _ := request(t, "POST", srv.URL+"/backends/a/drain", named, ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
}
