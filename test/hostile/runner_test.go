package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

// hostileCase is one request a raw client writes, and what the proxy must answer.
type hostileCase struct {
	name string
	// from is the client's source address (default untrustedIP).
	from string
	// admin sends the request to the admin listener instead of the client listener.
	admin bool
	// session gives the case a live polling session (r.sid, tagged) before the request.
	session bool
	// method of the request, for reading the answer's body (default GET).
	method string
	// request returns the bytes to write.
	request func(r *caseRun) []byte
	// body, when set, is written after the request in the background (large bodies: the answer
	// may come before the body is read).
	body func(r *caseRun) []byte
	// timeout bounds the wait for the answer (default 5 s): a hang is a failure.
	timeout time.Duration
	// want checks the answer; resp is nil when the connection closed without one.
	want func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error)
	// mustClose: the proxy must close the connection after its answer, whatever the answer says.
	mustClose bool
	// extraProxy is YAML added under "proxy:" in this case's proxy config.
	extraProxy string
}

// caseRun is the state of one case.
type caseRun struct {
	c       *cluster
	px      *testkit.Proxy
	conn    *testkit.RawConn // the case's connection
	sid     string           // live session of the case (hostileCase.session)
	opened  []string
	metrics string // /metrics text before the request
}

// addr is the listener the case writes to.
func (r *caseRun) addr(hc *hostileCase) string {
	if hc.admin {
		return r.px.Admin
	}
	return r.px.Addr
}

// opens records a session the case's answer created, to be closed through the proxy afterwards.
func (r *caseRun) opens(sid string) { r.opened = append(r.opened, sid) }

// runCases runs every case against a fresh proxy each.
func runCases(t *testing.T, cases []hostileCase) {
	cl := startCluster(t)
	for i := range cases {
		hc := &cases[i]
		t.Run(hc.name, func(t *testing.T) { runCase(t, cl, hc) })
	}
}

func runCase(t *testing.T, cl *cluster, hc *hostileCase) {
	px := cl.startProxy(t, hc.extraProxy)
	r := &caseRun{c: cl, px: px}
	live := make([]int, len(cl.backends))
	for i, b := range cl.backends {
		live[i] = liveSessions(t, b)
	}
	if hc.session {
		r.sid = newSession(t, px)
	}
	text, err := px.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	r.metrics = text
	from := hc.from
	if from == "" {
		from = untrustedIP
	}
	conn, err := testkit.DialRawFrom(from, r.addr(hc))
	if err != nil {
		t.Fatalf("dial %s from %s: %v", r.addr(hc), from, err)
	}
	defer conn.Close()
	r.conn = conn
	if err := conn.Send(hc.request(r), 5*time.Second); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	if hc.body != nil {
		body := hc.body(r)
		go conn.Send(body, 15*time.Second) // may fail once the proxy has answered and closed
	}
	timeout := hc.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	method := hc.method
	if method == "" {
		method = http.MethodGet
	}
	resp, rerr := conn.ReadResponse(method, timeout)
	if rerr == io.EOF {
		resp = nil
	}
	t.Logf("answer: %s", answerLine(resp, rerr))
	hc.want(t, r, resp, rerr)

	// The connection: usable again when the answer keeps it open, else closed by the proxy.
	switch {
	case resp == nil || rerr != nil:
	case hc.mustClose || !resp.KeepsOpen():
		if resp.Status != http.StatusSwitchingProtocols {
			if _, err := conn.WaitClosed(3 * time.Second); err != nil {
				t.Errorf("answer %d says the connection closes, but: %v", resp.Status, err)
			}
		}
	case hc.admin:
		canaryAdminSameConn(t, conn)
	default:
		canarySameConn(t, cl, conn)
	}
	conn.Close()

	for _, sid := range r.opened {
		if sid != "" {
			closeSession(t, px, sid)
		}
	}
	if r.sid != "" {
		closeSession(t, px, r.sid)
	}
	clean := assertNoFailures(t, px)
	assertNoSessions(t, cl, px, live)
	cl.closeAll(t)
	canaryNewConn(t, cl, px)
	if clean {
		assertNoFailures(t, px)
	}
	if err := px.Healthy(); err != nil {
		t.Errorf("process: %v", err)
	}
}

// answerLine is the status line of an answer (or what came instead), for the test log.
func answerLine(resp *testkit.RawResponse, err error) string {
	switch {
	case resp == nil && err == nil:
		return "closed without an answer"
	case resp == nil || resp.Status == 0:
		return fmt.Sprintf("no answer (%v)", err)
	}
	line, _, _ := strings.Cut(string(resp.Head), "\r\n")
	if len(resp.Body) > 0 && len(resp.Body) <= 80 {
		line += fmt.Sprintf(" %q", testkit.RedactSIDs(string(resp.Body)))
	}
	return line
}

// canaryRequest is a plain request any backend answers with its name.
func canaryRequest() []byte {
	return []byte("GET /__name HTTP/1.1\r\nHost: " + hostName + "\r\n\r\n")
}

// canarySameConn sends a request on the case's connection, which the answer kept open.
func canarySameConn(t *testing.T, cl *cluster, conn *testkit.RawConn) {
	t.Helper()
	if err := conn.Send(canaryRequest(), 3*time.Second); err != nil {
		t.Errorf("canary on the same connection: write: %v", err)
		return
	}
	resp, err := conn.ReadResponse(http.MethodGet, 5*time.Second)
	if err != nil {
		t.Errorf("canary on the same connection: %v", err)
		return
	}
	if resp.Status != http.StatusOK || !cl.names()[string(resp.Body)] {
		t.Errorf("canary on the same connection: got %s, want 200 and a backend name", resp)
	}
}

// canaryAdminSameConn sends GET /healthz on an admin connection the answer kept open.
func canaryAdminSameConn(t *testing.T, conn *testkit.RawConn) {
	t.Helper()
	if err := conn.Send([]byte("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 3*time.Second); err != nil {
		t.Errorf("admin canary on the same connection: write: %v", err)
		return
	}
	resp, err := conn.ReadResponse(http.MethodGet, 5*time.Second)
	if err != nil || resp.Status != http.StatusOK {
		t.Errorf("admin canary on the same connection: %v %v, want 200", resp, err)
	}
}

// canaryNewConn checks the proxy still serves: three plain requests on one new connection (they
// reach the backends' pooled connections), then a polling session opened and closed.
func canaryNewConn(t *testing.T, cl *cluster, px *testkit.Proxy) {
	t.Helper()
	conn, err := testkit.DialRaw(px.Addr)
	if err != nil {
		t.Errorf("canary: dial: %v", err)
		return
	}
	defer conn.Close()
	for i := 0; i < 3; i++ {
		if err := conn.Send(canaryRequest(), 3*time.Second); err != nil {
			t.Errorf("canary %d on a new connection: write: %v", i, err)
			return
		}
		resp, err := conn.ReadResponse(http.MethodGet, 5*time.Second)
		if err != nil {
			t.Errorf("canary %d on a new connection: %v", i, err)
			return
		}
		if resp.Status != http.StatusOK || !cl.names()[string(resp.Body)] {
			t.Errorf("canary %d on a new connection: got %s, want 200 and a backend name", i, resp)
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	sid, err := c.Handshake(ctx)
	if err != nil {
		t.Errorf("canary session: %v", err)
		return
	}
	if err := c.Close(ctx, sid); err != nil {
		t.Errorf("canary session: %v", err)
	}
}

// assertNoFailures checks that no backend counted a failure or is ejected, and reports whether
// none did.
func assertNoFailures(t *testing.T, px *testkit.Proxy) bool {
	t.Helper()
	if px.Exited() {
		t.Errorf("proxy exited: %v", px.Err())
		return false
	}
	states, err := px.BackendStates()
	if err != nil {
		t.Errorf("%v", err)
		return false
	}
	ok := true
	for _, id := range slices.Sorted(maps.Keys(states)) {
		s := states[id]
		if s.Failures != 0 || s.Ejected {
			ok = false
			t.Errorf("backend %s: %d failures, ejected %v; a client's request must never count against a backend", id, s.Failures, s.Ejected)
		}
	}
	return ok
}

// assertNoSessions checks that the proxy counts no session once the case's own sessions are
// closed, and that no backend holds more sessions than before the case.
func assertNoSessions(t *testing.T, cl *cluster, px *testkit.Proxy, before []int) {
	t.Helper()
	if px.Exited() {
		return
	}
	var last map[string]testkit.BackendState
	if !testkit.WaitFor(5*time.Second, func() bool {
		s, err := px.BackendStates()
		last = s
		return err == nil && testkit.SessionSum(s) == 0
	}) {
		t.Errorf("the proxy still counts sessions after the case: %+v", last)
	}
	for i, b := range cl.backends {
		var n int
		if !testkit.WaitFor(5*time.Second, func() bool { n = liveSessions(t, b); return n <= before[i] }) {
			t.Errorf("backend %s holds %d sessions, %d before the case: the case left a session at the backend", b.Name, n, before[i])
		}
	}
}

// ---- answer checks ----

// wantStatus accepts an answer with one of codes.
func wantStatus(codes ...int) func(*testing.T, *caseRun, *testkit.RawResponse, error) {
	return func(t *testing.T, _ *caseRun, resp *testkit.RawResponse, err error) {
		t.Helper()
		checkStatus(t, resp, err, codes...)
	}
}

// checkStatus reports whether the answer has one of codes, failing the test when not.
func checkStatus(t *testing.T, resp *testkit.RawResponse, err error, codes ...int) bool {
	t.Helper()
	switch {
	case resp == nil && err == nil:
		t.Errorf("connection closed without an answer; want status %v", codes)
	case err != nil && (resp == nil || resp.Status == 0):
		t.Errorf("no answer: %v; want status %v", err, codes)
	case !slices.Contains(codes, resp.Status):
		t.Errorf("answer %s; want status %v", resp, codes)
	default:
		if err != nil {
			t.Errorf("answer %d, then: %v", resp.Status, err)
			return false
		}
		return true
	}
	return false
}

// wantSIDUnknown accepts Engine.IO's own 400 {"code":1,...}; origin, when set, must be allowed by CORS.
func wantSIDUnknown(origin string) func(*testing.T, *caseRun, *testkit.RawResponse, error) {
	return func(t *testing.T, _ *caseRun, resp *testkit.RawResponse, err error) {
		t.Helper()
		if !checkStatus(t, resp, err, http.StatusBadRequest) {
			return
		}
		var e struct {
			Code *int `json:"code"`
		}
		if json.Unmarshal(resp.Body, &e) != nil || e.Code == nil || *e.Code != 1 {
			t.Errorf("body %q, want {\"code\":1,\"message\":\"Session ID unknown\"}", resp.Body)
		}
		if origin != "" {
			if got := resp.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
				t.Errorf("Access-Control-Allow-Origin %q, want [%q] (head %q)", got, origin, resp.Head)
			}
			if got := resp.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("Access-Control-Allow-Credentials %q, want true", got)
			}
		}
	}
}

// wantBackendName accepts 200 with a backend's name: a plain request forwarded.
func wantBackendName(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
	t.Helper()
	if checkStatus(t, resp, err, http.StatusOK) && !r.c.names()[string(resp.Body)] {
		t.Errorf("body %q, want a backend name", resp.Body)
	}
}

// wantHandshake accepts a polling handshake whose sid carries the proxy's tag; it returns the sid
// (registered to be closed) or "".
func wantHandshake(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) string {
	t.Helper()
	if !checkStatus(t, resp, err, http.StatusOK) {
		return ""
	}
	sid, perr := testkit.OpenSID(string(resp.Body))
	if perr != nil {
		t.Errorf("handshake answer: %v", perr)
		return ""
	}
	r.opens(sid)
	if !isTagged(sid) {
		t.Errorf("handshake sid (sid_hash %s) is not tagged: the proxy did not take the request for a handshake, but the backend did", proxy.SIDHash(sid))
	}
	return sid
}

// wantEchoed checks a forwarded GET /__headers and hands the backend's view to check.
func wantEchoed(check func(t *testing.T, e echoed)) func(*testing.T, *caseRun, *testkit.RawResponse, error) {
	return func(t *testing.T, _ *caseRun, resp *testkit.RawResponse, err error) {
		t.Helper()
		if !checkStatus(t, resp, err, http.StatusOK) {
			return
		}
		var e echoed
		if err := json.Unmarshal(resp.Body, &e); err != nil {
			t.Errorf("GET /__headers answer %q: %v", resp.Body, err)
			return
		}
		check(t, e)
	}
}

// wantOneHeader checks that the backend saw header name exactly once, with value want.
func wantOneHeader(t *testing.T, e echoed, name, want string) {
	t.Helper()
	if got := headerLines(e.RawHeaders, name); len(got) != 1 || got[0] != want {
		t.Errorf("backend saw %s %q, want exactly [%q] (all headers %q)", name, got, want, e.RawHeaders)
	}
}

// wantNoHeader checks that the backend did not see header name.
func wantNoHeader(t *testing.T, e echoed, name string) {
	t.Helper()
	if got := headerLines(e.RawHeaders, name); len(got) != 0 {
		t.Errorf("backend saw %s %q, want none (all headers %q)", name, got, e.RawHeaders)
	}
}

// oneConnection checks a single Connection header whose value is close.
func oneConnectionClose(t *testing.T, resp *testkit.RawResponse) {
	t.Helper()
	if got := resp.Values("Connection"); len(got) != 1 || !strings.EqualFold(got[0], "close") {
		t.Errorf("Connection headers %q, want exactly one, \"close\" (head %q)", got, resp.Head)
	}
}

// metricDelta is how much a counter of the proxy grew since the case's request.
func (r *caseRun) metricDelta(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	before, _ := testkit.MetricValue(r.metrics, name, labels...)
	after, _ := r.px.Metric(t, name, labels...)
	return after - before
}

// ---- request builders ----

// get is "GET target HTTP/1.1" with Host and the given header lines.
func get(target string, headers ...string) func(*caseRun) []byte {
	return func(*caseRun) []byte { return req("GET", target, headers...) }
}

func req(method, target string, headers ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, hostName)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// lit is a request given byte for byte.
func lit(s string) func(*caseRun) []byte { return func(*caseRun) []byte { return []byte(s) } }

// pollURL is the polling URL of sid (as given: tagged, forged, encoded).
func pollURL(sid string) string { return "/socket.io/?EIO=4&transport=polling&sid=" + sid }

// wsHeaders are the headers of a WebSocket upgrade, names as given.
var wsHeaders = []string{"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}

// wsAccept is the Sec-WebSocket-Accept of the key in wsHeaders (RFC 6455 §1.3).
const wsAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
