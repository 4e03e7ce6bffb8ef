package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// testSettings are the settings of a production proxy (configs.Default's values).
func testSettings() Settings {
	return Settings{
		Paths:              []string{"/socket.io/"},
		TagSIDs:            true,
		SessionTTL:         60 * time.Second,
		TTLMargin:          15 * time.Second,
		MaxBodyBytes:       1_000_000,
		UpstreamTimeout:    90 * time.Second,
		DialTimeout:        3 * time.Second,
		TunnelIdleTimeout:  90 * time.Second,
		MaxConnsPerBackend: 20000,
	}
}

type testProxy struct {
	*Proxy
	addr string
	bal  *balancer.Balancer
}

func specsOf(bs ...*testBackend) []balancer.Spec {
	var specs []balancer.Spec
	for _, b := range bs {
		specs = append(specs, balancer.Spec{ID: b.url(), Addr: b.addr, Weight: 1, State: balancer.Active, Source: "static"})
	}
	return specs
}

func startProxy(t testing.TB, mod func(*Settings), specs []balancer.Spec) *testProxy {
	t.Helper()
	return startProxyOpts(t, mod, specs)
}

func startProxyOpts(t testing.TB, mod func(*Settings), specs []balancer.Spec, opts ...Option) *testProxy {
	t.Helper()
	bal := balancer.New(balancer.NewRoundRobin(), balancer.WithTagger(sticky.TagFor))
	bal.Update(specs)
	s := testSettings()
	s.DialTimeout = time.Second
	if mod != nil {
		mod(&s)
	}
	p := New(zap.NewNop(), bal, s, opts...)
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return &testProxy{Proxy: p, addr: ln.Addr().String(), bal: bal}
}

var httpc = &http.Client{Timeout: 5 * time.Second}

func get(t testing.TB, url string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func post(t testing.TB, url, body string) (int, string) {
	t.Helper()
	resp, err := httpc.Post(url, "text/plain;charset=UTF-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// handshake does a polling handshake through addr and returns the sid the client sees.
func handshake(t testing.TB, addr string) string {
	t.Helper()
	code, _, body := get(t, "http://"+addr+"/socket.io/?EIO=4&transport=polling&t=x")
	if code != 200 {
		t.Fatalf("handshake: %d %s", code, body)
	}
	hs, err := sticky.ParseHandshake([]byte(body))
	if err != nil {
		t.Fatalf("handshake body %q: %v", body, err)
	}
	return string(hs.SID)
}

func pollURL(addr, sid string) string {
	return "http://" + addr + "/socket.io/?EIO=4&transport=polling&t=y&sid=" + sid
}

func TestHandshakeIsTaggedAndRoutedByTag(t *testing.T) {
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	p := startProxy(t, nil, specsOf(b1, b2, b3))
	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		sid := handshake(t, p.addr)
		tag, raw, ok := sticky.SplitTagged([]byte(sid))
		if !ok {
			t.Fatalf("sid %q is not tagged", sid)
		}
		owner := p.bal.Snapshot().ByTag(tag)
		if owner == nil || !strings.HasPrefix(string(raw), strings.TrimPrefix(owner.ID, "http://")) && !strings.HasPrefix(string(raw), backendName(owner, b1, b2, b3)) {
			t.Fatalf("tag of %q names %v", sid, owner)
		}
		for j := 0; j < 3; j++ {
			code, _, body := get(t, pollURL(p.addr, sid))
			if code != 200 || body != "4"+backendName(owner, b1, b2, b3) {
				t.Fatalf("poll %d of %s: %d %q", j, sid, code, body)
			}
		}
		if code, body := post(t, pollURL(p.addr, sid), "4hello"); code != 200 || body != "ok" {
			t.Fatalf("post: %d %q", code, body)
		}
		seen[backendName(owner, b1, b2, b3)]++
	}
	for _, n := range []string{"b1", "b2", "b3"} {
		if seen[n] != 10 {
			t.Errorf("round robin: %s got %d of 30 sessions", n, seen[n])
		}
	}
	// Backends never see tags.
	uri, _ := b1.last()
	if strings.Contains(uri, ".") && strings.Contains(uri, "sid=") {
		if _, _, ok := sticky.SplitTagged([]byte(uri[strings.Index(uri, "sid=")+4:])); ok {
			t.Errorf("backend saw a tagged sid: %s", uri)
		}
	}
}

func backendName(be *balancer.Backend, bs ...*testBackend) string {
	for _, b := range bs {
		if b.url() == be.ID {
			return b.name
		}
	}
	return "?"
}

func TestBackendSeesRawSID(t *testing.T) {
	b := startBackend(t, "raw")
	p := startProxy(t, nil, specsOf(b))
	sid := handshake(t, p.addr)
	_, raw, _ := sticky.SplitTagged([]byte(sid))
	get(t, pollURL(p.addr, sid)+"&extra=1")
	uri, _ := b.last()
	want := "/socket.io/?EIO=4&transport=polling&t=y&sid=" + string(raw) + "&extra=1"
	if uri != want {
		t.Fatalf("backend got %q, want %q", uri, want)
	}
}

func TestUnknownSIDAnswersLikeEngineIO(t *testing.T) {
	b := startBackend(t, "u")
	p := startProxy(t, nil, specsOf(b))
	for _, sid := range []string{"nope", "AAAA.zzz", sticky.TagFor("gone") + "x.abc"} {
		code, h, body := get(t, pollURL(p.addr, sid), "Origin", "https://app.example")
		if code != 400 || body != `{"code":1,"message":"Session ID unknown"}` {
			t.Errorf("sid %q: %d %q", sid, code, body)
		}
		if h.Get("Content-Type") != "application/json" || h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			h.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("sid %q: headers %v", sid, h)
		}
	}
}

func TestTwoProxiesRouteEachOthersSessions(t *testing.T) {
	b1, b2 := startBackend(t, "b1"), startBackend(t, "b2")
	pa := startProxy(t, nil, specsOf(b1, b2))
	pb := startProxy(t, nil, specsOf(b2, b1)) // order differs: tags depend on ids only
	for i := 0; i < 10; i++ {
		sid := handshake(t, pa.addr)
		for j, addr := range []string{pb.addr, pa.addr, pb.addr} {
			if code, _, body := get(t, pollURL(addr, sid)); code != 200 {
				t.Fatalf("session %d request %d via other proxy: %d %s", i, j, code, body)
			}
		}
	}
}

func TestUntaggedSessionsUseTheTable(t *testing.T) {
	for _, format := range []string{"v4", "v3", "jsonp", "gzip"} {
		t.Run(format, func(t *testing.T) {
			b1, b2 := startBackend(t, "b1"), startBackend(t, "b2")
			b1.format, b2.format = format, format
			for _, tag := range []bool{true, false} {
				p := startProxy(t, func(s *Settings) { s.TagSIDs = tag }, specsOf(b1, b2))
				code, h, body := get(t, "http://"+p.addr+"/socket.io/?EIO=4&transport=polling", "Accept-Encoding", "gzip")
				if code != 200 || h.Get("Content-Encoding") != "" {
					t.Fatalf("handshake: %d %v", code, h)
				}
				hs, err := sticky.ParseHandshake([]byte(body))
				if err != nil {
					t.Fatalf("%q: %v", body, err)
				}
				_, _, tagged := sticky.SplitTagged(hs.SID)
				if wantTag := tag && format != "jsonp"; tagged != wantTag {
					t.Fatalf("tag_sids=%v format %s: sid %q tagged=%v", tag, format, hs.SID, tagged)
				}
				for j := 0; j < 4; j++ {
					if code, _, body := get(t, pollURL(p.addr, string(hs.SID))); code != 200 {
						t.Fatalf("poll %d: %d %s", j, code, body)
					}
				}
				if p.Table().Len() != 1 {
					t.Fatalf("table has %d entries, want 1", p.Table().Len())
				}
			}
		})
	}
}

func TestClosePacketForgetsTheSession(t *testing.T) {
	for _, tag := range []bool{false, true} { // tagged: the tag is stripped from the URI in place
		b := startBackend(t, fmt.Sprint("c", tag))
		p := startProxy(t, func(s *Settings) { s.TagSIDs = tag }, specsOf(b))
		sid := handshake(t, p.addr)
		if p.Table().Len() != 1 || p.bal.Stats(b.url()).Sessions.Load() != 1 {
			t.Fatalf("tag %v after handshake: table %d, sessions %d", tag, p.Table().Len(), p.bal.Stats(b.url()).Sessions.Load())
		}
		if code, _ := post(t, pollURL(p.addr, sid), "1"); code != 200 {
			t.Fatal(code)
		}
		if p.Table().Len() != 0 || p.bal.Stats(b.url()).Sessions.Load() != 0 {
			t.Fatalf("tag %v after close: table %d, sessions %d", tag, p.Table().Len(), p.bal.Stats(b.url()).Sessions.Load())
		}
		if code, _, _ := get(t, pollURL(p.addr, sid)); code != 400 {
			t.Fatalf("poll after close: %d", code)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	b := startBackend(t, "l")
	p := startProxy(t, func(s *Settings) { s.MaxBodyBytes = 1000 }, specsOf(b))
	sid := handshake(t, p.addr)
	if code, _ := post(t, pollURL(p.addr, sid), strings.Repeat("x", 1000)); code != 200 {
		t.Fatalf("body at the limit: %d", code)
	}
	if code, _ := post(t, pollURL(p.addr, sid), strings.Repeat("x", 1001)); code != 413 {
		t.Fatalf("body over the limit: %d, want 413", code)
	}
}

func TestForwardedHeaders(t *testing.T) {
	b := startBackend(t, "h")
	p := startProxy(t, nil, specsOf(b))
	get(t, "http://"+p.addr+"/app", "X-Forwarded-For", "203.0.113.9", "Keep-Alive", "timeout=5",
		"Proxy-Authorization", "secret", "Connection", "X-Drop", "X-Drop", "1")
	_, h := b.last()
	if h["X-Forwarded-For"] != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", h["X-Forwarded-For"])
	}
	if h["X-Real-Ip"] != "127.0.0.1" || h["X-Forwarded-Proto"] != "http" || h["X-Forwarded-Host"] != p.addr {
		t.Errorf("forwarded headers: %v", h)
	}
	if h["Host"] != p.addr {
		t.Errorf("Host = %q, want the client's %q", h["Host"], p.addr)
	}
	for _, k := range []string{"Keep-Alive", "Proxy-Authorization", "X-Drop"} {
		if _, ok := h[k]; ok {
			t.Errorf("hop-by-hop header %s reached the backend", k)
		}
	}
}

func TestContentTypeIsNotInvented(t *testing.T) {
	b := startBackend(t, "ct")
	p := startProxy(t, nil, specsOf(b))
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/bare", strings.NewReader("40"))
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, h := b.last(); h["Content-Type"] != "" {
		t.Errorf("backend got Content-Type %q for a request that had none", h["Content-Type"])
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		t.Errorf("client got Content-Type %q for a response that had none", ct)
	}
}

func TestTrustedProxyGivesClientIP(t *testing.T) {
	b := startBackend(t, "tp")
	p := startProxy(t, func(s *Settings) { s.TrustedProxies = mustPrefixes("127.0.0.0/8") }, specsOf(b))
	get(t, "http://"+p.addr+"/app", "X-Forwarded-For", "198.51.100.7, 127.0.0.2")
	if _, h := b.last(); h["X-Real-Ip"] != "198.51.100.7" {
		t.Errorf("X-Real-Ip = %q, want the first untrusted hop", h["X-Real-Ip"])
	}
}

func TestHandshakeRetriesAnotherBackend(t *testing.T) {
	live := startBackend(t, "live")
	dead := startBackend(t, "dead")
	dead.stop()
	p := startProxy(t, nil, specsOf(dead, live))
	for i := 0; i < 10; i++ {
		sid := handshake(t, p.addr)
		tag, _, _ := sticky.SplitTagged([]byte(sid))
		if be := p.bal.Snapshot().ByTag(tag); be.ID != live.url() {
			t.Fatalf("session on %s", be.ID)
		}
	}
	if p.bal.Stats(dead.url()).Failures.Load() == 0 {
		t.Errorf("the dead backend was not reported")
	}
}

func TestNoBackendAnswers(t *testing.T) {
	dead := startBackend(t, "dead")
	dead.stop()
	p := startProxy(t, nil, specsOf(dead))
	code, _, _ := get(t, "http://"+p.addr+"/socket.io/?EIO=4&transport=polling")
	if code != 502 && code != 503 {
		t.Fatalf("all backends down: %d, want 502 or 503", code)
	}
	empty := startProxy(t, nil, nil)
	code, h, _ := get(t, "http://"+empty.addr+"/socket.io/?EIO=4&transport=polling")
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("no backends: %d %v, want 503 with Retry-After", code, h)
	}
}

func TestOwnerDownGivesSessionUnknown(t *testing.T) {
	b := startBackend(t, "gone")
	p := startProxy(t, nil, specsOf(b))
	sid := handshake(t, p.addr)
	b.stop()
	code, _, body := get(t, pollURL(p.addr, sid))
	if code != 400 || !strings.Contains(body, `"code":1`) {
		t.Fatalf("owner down: %d %q", code, body)
	}
}

func wsURL(addr, query string) string {
	return "ws://" + addr + "/socket.io/?EIO=4&transport=websocket" + query
}

func TestWebSocketOnlyTunnel(t *testing.T) {
	b := startBackend(t, "ws")
	p := startProxy(t, nil, specsOf(b))
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(p.addr, ""), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.Close()
	_, open, err := c.ReadMessage()
	if err != nil || !strings.HasPrefix(string(open), `0{"sid":"ws_`) {
		t.Fatalf("open packet %q %v", open, err)
	}
	for i := 0; i < 3; i++ {
		c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("4m", i)))
		_, msg, err := c.ReadMessage()
		if err != nil || string(msg) != fmt.Sprint("ws:4m", i) {
			t.Fatalf("echo %d: %q %v", i, msg, err)
		}
	}
	if p.Tunnels() != 1 || p.bal.Stats(b.url()).Tunnels.Load() != 1 {
		t.Errorf("tunnels = %d / %d, want 1", p.Tunnels(), p.bal.Stats(b.url()).Tunnels.Load())
	}
}

func TestUpgradeWithSIDReachesOwner(t *testing.T) {
	b1, b2 := startBackend(t, "b1"), startBackend(t, "b2")
	p := startProxy(t, nil, specsOf(b1, b2))
	for i := 0; i < 4; i++ {
		sid := handshake(t, p.addr)
		c, resp, err := websocket.DefaultDialer.Dial(wsURL(p.addr, "&sid="+sid), nil)
		if err != nil {
			t.Fatalf("upgrade %s: %v %v", sid, err, resp)
		}
		c.WriteMessage(websocket.TextMessage, []byte("2probe"))
		_, msg, err := c.ReadMessage()
		tag, _, _ := sticky.SplitTagged([]byte(sid))
		owner := backendName(p.bal.Snapshot().ByTag(tag), b1, b2)
		if err != nil || string(msg) != owner+":2probe" {
			t.Fatalf("probe answer %q %v, want from %s", msg, err, owner)
		}
		c.Close()
	}
	// An upgrade for an unknown session gets Engine.IO's raw 400.
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(p.addr, "&sid=unknown"), nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("unknown sid upgrade: %v %v", err, resp)
	}
}

func TestTunnelsLeaveNothingBehind(t *testing.T) {
	b := startBackend(t, "leak")
	p := startProxy(t, nil, specsOf(b))
	// Warm up pools, then take the baseline. Tunnels are parked (no goroutine while idle): the
	// poller's registrations are counted too.
	c, _, err := websocket.DefaultDialer.Dial(wsURL(p.addr, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && !eventually(func() bool { return p.parkedDirs() == 2 }) {
		t.Fatalf("a live tunnel is not parked: %d poller registrations, want 2", p.parkedDirs())
	}
	c.Close()
	waitFor(t, func() bool { return p.Tunnels() == 0 })
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	const total, batch = 1000, 50
	for i := 0; i < total; i += batch {
		var wg sync.WaitGroup
		errs := make(chan error, batch)
		for j := 0; j < batch; j++ {
			wg.Add(1)
			go func(j int) {
				defer wg.Done()
				c, _, err := websocket.DefaultDialer.Dial(wsURL(p.addr, ""), nil)
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				if _, _, err := c.ReadMessage(); err != nil {
					errs <- err
					return
				}
				if j%2 == 0 { // half close politely, half just drop the TCP connection
					c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
				}
			}(j)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool {
		return p.Tunnels() == 0 && p.bal.Stats(b.url()).Tunnels.Load() == 0 && p.parkedDirs() == 0
	})
	// Idle server workers come and go on their own; what must be gone is every tunnel goroutine.
	var g, fd int
	ok := eventually(func() bool {
		g, fd = tunnelGoroutines(), openFDs(t)
		return g == 0 && fd <= baseFD+5
	})
	if !ok {
		t.Fatalf("after %d tunnels: %d tunnel goroutines left, fds %d (baseline %d)", total, g, fd, baseFD)
	}
	t.Logf("after %d tunnels: goroutines %d (baseline %d), tunnel goroutines %d, fds %d (baseline %d)",
		total, runtime.NumGoroutine(), baseG, g, fd, baseFD)
}

// tunnelGoroutines counts goroutines running tunnel code.
func tunnelGoroutines() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "proxy.(*Proxy).splice") || strings.Contains(g, "proxy.pipe(") || strings.Contains(g, "proxy.(*Proxy).upgrade.func") {
			n++
		}
	}
	return n
}

func TestShutdownClosesTunnels(t *testing.T) {
	b := startBackend(t, "sd")
	p := startProxy(t, nil, specsOf(b))
	c, _, err := websocket.DefaultDialer.Dial(wsURL(p.addr, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ReadMessage()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil || os.IsTimeout(err) {
		t.Fatalf("tunnel still open after shutdown: %v", err)
	}
}

func TestTunnelIdleTimeout(t *testing.T) {
	b := startBackend(t, "idle")
	p := startProxy(t, func(s *Settings) { s.TunnelIdleTimeout = 300 * time.Millisecond }, specsOf(b))
	c, _, err := websocket.DefaultDialer.Dial(wsURL(p.addr, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ReadMessage()
	// Traffic keeps it open past the timeout.
	for i := 0; i < 4; i++ {
		time.Sleep(150 * time.Millisecond)
		c.WriteMessage(websocket.TextMessage, []byte("3"))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("active tunnel closed: %v", err)
		}
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil || os.IsTimeout(err) {
		t.Fatalf("idle tunnel not closed: %v", err)
	}
}

func TestUpgradeRequestReachesBackendIntact(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			got <- err.Error()
			return
		}
		got <- req.RequestURI + "|" + req.Header.Get("Connection") + "|" + req.Header.Get("Upgrade") + "|" + req.Header.Get("Sec-WebSocket-Key") + "|" + req.Header.Get("X-Forwarded-For")
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+
			acceptKey(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
		c.Write([]byte{0x81, 0x02, 'h', 'i'}) // a text frame right after the 101
		time.Sleep(200 * time.Millisecond)
	}()
	spec := balancer.Spec{ID: "raw", Addr: ln.Addr().String(), Weight: 1, State: balancer.Active}
	p := startProxy(t, nil, []balancer.Spec{spec})
	c, resp, err := websocket.DefaultDialer.Dial(wsURL(p.addr, "&x=1"), nil)
	if err != nil {
		t.Fatalf("%v %+v; backend saw %s", err, resp, <-got)
	}
	defer c.Close()
	_, msg, err := c.ReadMessage()
	if err != nil || string(msg) != "hi" {
		t.Fatalf("early frame %q %v", msg, err)
	}
	line := <-got
	parts := strings.Split(line, "|")
	if len(parts) != 5 || parts[0] != "/socket.io/?EIO=4&transport=websocket&x=1" || !strings.EqualFold(parts[1], "Upgrade") ||
		parts[2] != "websocket" || parts[3] == "" || parts[4] != "127.0.0.1" {
		t.Fatalf("backend saw %q", line)
	}
}

func acceptKey(k string) string {
	// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
	return websocketAccept(k)
}

func mustPrefixes(s ...string) []netipPrefix { return parsePrefixes(s) }

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	if !eventually(cond) {
		t.Fatal("condition not reached within 5s")
	}
}

func eventually(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

var _ = json.Marshal

func TestAffinityCookieOnOtherPaths(t *testing.T) {
	b1, b2, b3 := startBackend(t, "b1"), startBackend(t, "b2"), startBackend(t, "b3")
	p := startProxy(t, func(s *Settings) { s.AffinityCookie = "sioaff" }, specsOf(b1, b2, b3))
	for i := 0; i < 6; i++ {
		code, h, body := get(t, "http://"+p.addr+"/app")
		if code != 200 {
			t.Fatal(code)
		}
		var cookie string
		for _, c := range (&http.Response{Header: h}).Cookies() {
			if c.Name == "sioaff" {
				cookie = c.Value
			}
		}
		if cookie == "" {
			t.Fatalf("no affinity cookie set: %v", h)
		}
		if strings.Contains(cookie, "127.0.0.1") {
			t.Fatalf("cookie %q reveals a backend address", cookie)
		}
		for j := 0; j < 5; j++ {
			_, _, again := get(t, "http://"+p.addr+"/app", "Cookie", "sioaff="+cookie)
			if again != body {
				t.Fatalf("request %d with cookie %s went to %q, first went to %q", j, cookie, again, body)
			}
		}
	}
	// A cookie naming no backend is ignored: the request is placed anew.
	if code, _, _ := get(t, "http://"+p.addr+"/app", "Cookie", "sioaff=zzz"); code != 200 {
		t.Fatalf("stale cookie: %d", code)
	}
}

func TestTunnelEndForgetsUpgradedSessionOnly(t *testing.T) {
	b := startBackend(t, "up")
	clk := &fakeClock{t: time.Now()} // real time at first: conn deadlines derive from it
	p := startClockedProxy(t, clk, specsOf(b))
	// Upgraded: polling stops when the WebSocket opens; closing it ends the session.
	sid := handshake(t, p.addr)
	c, _, err := websocket.DefaultDialer.Dial(wsURL(p.addr, "&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, p, b.url(), 1, 1, "upgraded session")
	c.Close()
	if !eventually(func() bool { return p.Table().Len() == 0 }) {
		_, raw, _ := sticky.SplitTagged([]byte(sid))
		seen, ok := p.Table().LastSeen(raw)
		t.Fatalf("upgraded session still in the table: tunnels %d, last seen %v ago (%v)", p.Tunnels(), clk.Now().Sub(seen), ok)
	}
	wantCounts(t, p, b.url(), 0, 0, "after its WebSocket closed")

	// Failed probe: polling goes on past the WebSocket's start; the session outlives the tunnel.
	sid = handshake(t, p.addr)
	c, _, err = websocket.DefaultDialer.Dial(wsURL(p.addr, "&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return p.Tunnels() == 1 })
	clk.Advance(upgradeSlack + 200*time.Millisecond)
	if code, _, _ := get(t, pollURL(p.addr, sid)); code != 200 {
		t.Fatalf("poll during probe: %d", code)
	}
	c.Close()
	waitFor(t, func() bool { return p.Tunnels() == 0 })
	if p.Table().Len() != 1 {
		t.Fatalf("table has %d entries after a failed probe, want 1", p.Table().Len())
	}
	wantCounts(t, p, b.url(), 1, 0, "after a failed probe")
}

// A 400 from the owner (its session is gone: ended at the backend behind the proxy's back) ends the
// proxy's session too: the ledger forgets it once, and the counts return to 0.
func TestBackend400EndsTheSession(t *testing.T) {
	b := startBackend(t, "gone")
	p := startProxy(t, nil, specsOf(b))
	sid := handshake(t, p.addr)
	_, raw, ok := sticky.SplitTagged([]byte(sid))
	if !ok {
		t.Fatalf("sid %q is not tagged", sid)
	}
	// The session ends at the backend directly, not through the proxy.
	if code, _ := post(t, pollURL(b.addr, string(raw)), "1"); code != 200 {
		t.Fatalf("close at the backend: %d", code)
	}
	if p.Table().Len() != 1 || p.bal.Stats(b.url()).Sessions.Load() != 1 {
		t.Fatalf("before the proxy saw the 400: table %d, sessions %d", p.Table().Len(), p.bal.Stats(b.url()).Sessions.Load())
	}
	if code, _, _ := get(t, pollURL(p.addr, sid)); code != 400 {
		t.Fatalf("poll of a session the backend ended: %d, want its 400", code)
	}
	if p.Table().Len() != 0 || p.bal.Stats(b.url()).Sessions.Load() != 0 {
		t.Fatalf("after the backend's 400: table %d, sessions %d, want 0 and 0", p.Table().Len(), p.bal.Stats(b.url()).Sessions.Load())
	}
	if n := p.bal.Stats(b.url()).Failures.Load(); n != 0 {
		t.Fatalf("the backend's 400 (the client's stale sid) counted %d failures against it", n)
	}
}
