package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// Tests of the front door (issue 10): header names in any case, client errors that never count
// against a backend, retries that never duplicate, one Connection header. Each drives raw bytes.

const wsKey = "dGhlIHNhbXBsZSBub25jZQ=="

func handshakeBody(sid string) string {
	return `0{"sid":"` + sid + `","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
}

// eioRaw answers like an Engine.IO server: a handshake, "ok" to POSTs, a payload to polls.
func eioRaw(r *rawReq) rawAnswer {
	switch {
	case !strings.Contains(r.Line, "/socket.io/"):
		return okAnswer("raw")
	case strings.HasPrefix(r.Line, "POST "):
		return rawAnswer{Resp: "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nok"}
	case r.query().Get("sid") != "":
		return rawAnswer{Resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 6\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n4hello"}
	}
	body := handshakeBody("rawsid0000000000001")
	return rawAnswer{Resp: fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n%s", len(body), body)}
}

// --- point 1: header names in any case ---

func TestLowercaseWebSocketUpgradeIsTunnelled(t *testing.T) {
	b := startBackend(t, "lc")
	p := startProxy(t, nil, specsOf(b))
	rc := dialRaw(t, p.addr)
	rc.send("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n" +
		"sec-websocket-key: " + wsKey + "\r\nsec-websocket-version: 13\r\n\r\n")
	r := rc.read(5*time.Second, true)
	if r.Status != 101 || len(r.values("Upgrade")) != 1 || !strings.EqualFold(r.values("Upgrade")[0], "websocket") {
		t.Fatalf("lowercase upgrade: %d %q %v", r.Status, r.Head, r.Err)
	}
	// The open packet follows as a WebSocket text frame.
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 2)
	if _, err := rc.br.Read(hdr); err != nil || hdr[0] != 0x81 {
		t.Fatalf("no text frame after 101: %x %v", hdr, err)
	}
	if p.Tunnels() != 1 {
		t.Fatalf("tunnels = %d, want 1", p.Tunnels())
	}
}

func TestPooled101ClosesThatConnection(t *testing.T) {
	var mu sync.Mutex
	n := 0
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 1 { // a 101 to a request that asked for no upgrade, and the socket stays open
			return rawAnswer{Resp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi"}
		}
		return okAnswer("fine")
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	r := exchange(t, p.addr, "GET /app HTTP/1.1\r\nHost: x\r\n\r\n")
	if r.Status != 502 {
		t.Fatalf("101 to a plain request: %d %q, want 502", r.Status, r.Head)
	}
	for i := 0; i < 3; i++ {
		r = exchange(t, p.addr, "GET /app HTTP/1.1\r\nHost: x\r\n\r\n")
		if r.Status != 200 || r.Body != "fine" {
			t.Fatalf("request %d after the 101: %d %q %q", i, r.Status, r.Head, r.Body)
		}
	}
	for _, q := range rb.requests()[1:] {
		if q.Conn == 1 {
			t.Fatalf("a request was sent on the connection that answered 101: %+v", q)
		}
	}
	if f := p.bal.Stats("raw").Failures.Load(); f != 0 {
		t.Errorf("backend failures = %d, want 0", f)
	}
}

func TestForwardedHeadersIgnoreCase(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	r := exchange(t, p.addr, "GET /app HTTP/1.1\r\nHost: front.example\r\nx-real-ip: 6.6.6.6\r\nx-forwarded-proto: https\r\n"+
		"x-forwarded-host: evil.example\r\nx-forwarded-for: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n")
	if r.Status != 200 {
		t.Fatalf("%d %q", r.Status, r.Head)
	}
	q := rb.lastReq(t)
	for name, want := range map[string]string{
		"X-Real-Ip":         "127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "front.example",
		"X-Forwarded-For":   "203.0.113.9, 198.51.100.1, 127.0.0.1",
	} {
		if got := q.values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s at the backend = %q, want exactly [%q]\n%s", name, got, want, q.Head)
		}
	}
}

func TestHopByHopHeadersIgnoreCase(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	r := exchange(t, p.addr, "GET /app HTTP/1.1\r\nHost: x\r\nkeep-alive: timeout=5\r\nproxy-authorization: secret\r\n"+
		"proxy-connection: keep-alive\r\nte: trailers\r\ntrailer: x-t\r\nupgrade: h2c\r\nconnection: x-drop, keep-alive\r\n"+
		"x-drop: 1\r\nX-Keep: 1\r\n\r\n")
	if r.Status != 200 {
		t.Fatalf("%d %q", r.Status, r.Head)
	}
	q := rb.lastReq(t)
	for _, name := range []string{"Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "TE", "Trailer", "Upgrade", "Connection", "X-Drop"} {
		if got := q.values(name); len(got) != 0 {
			t.Errorf("hop-by-hop %s reached the backend: %q", name, got)
		}
	}
	if got := q.values("X-Keep"); len(got) != 1 {
		t.Errorf("X-Keep = %q, want it once", got)
	}
}

func TestHandshakeDropsAcceptEncodingIgnoreCase(t *testing.T) {
	rb := startRawBackend(t, eioRaw)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	r := exchange(t, p.addr, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\naccept-encoding: gzip, br\r\n\r\n")
	if r.Status != 200 || !strings.Contains(r.Body, `"sid":"`) {
		t.Fatalf("handshake: %d %q", r.Status, r.Body)
	}
	if got := rb.lastReq(t).values("Accept-Encoding"); len(got) != 0 {
		t.Fatalf("handshake reached the backend with accept-encoding %q", got)
	}
}

func TestProxyErrorsGetCORSForLowercaseOrigin(t *testing.T) {
	rb := startRawBackend(t, eioRaw)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	r := exchange(t, p.addr, "GET /socket.io/?EIO=4&transport=polling&sid=nope HTTP/1.1\r\nHost: x\r\norigin: https://app.example\r\n\r\n")
	if r.Status != 400 {
		t.Fatalf("%d %q", r.Status, r.Head)
	}
	if got := r.values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://app.example" {
		t.Fatalf("Access-Control-Allow-Origin = %q\n%s", got, r.Head)
	}
}

func TestEveryXFFLineIsWalked(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, func(s *Settings) { s.TrustedProxies = mustPrefixes("127.0.0.0/8") }, []balancer.Spec{rb.spec("raw")})
	for _, c := range []struct{ head, want string }{
		{"X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-For: 198.51.100.7, 127.0.0.2\r\n", "198.51.100.7"},
		{"x-forwarded-for: 198.51.100.8\r\n", "198.51.100.8"},
		{"X-FORWARDED-FOR: 203.0.113.6\r\nx-forwarded-for: 127.0.0.3\r\n", "203.0.113.6"},
	} {
		r := exchange(t, p.addr, "GET /app HTTP/1.1\r\nHost: x\r\n"+c.head+"\r\n")
		if r.Status != 200 {
			t.Fatalf("%d", r.Status)
		}
		if got := rb.lastReq(t).values("X-Real-Ip"); len(got) != 1 || got[0] != c.want {
			t.Errorf("%q: X-Real-Ip %q, want %s", c.head, got, c.want)
		}
	}
}

func TestHashKeyHeaderIgnoresCase(t *testing.T) {
	f := KeyFuncFor("header", "X-User")
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.DisableNormalizing()
	if err := ctx.Request.Header.Read(bufioReader([]byte("GET / HTTP/1.1\r\nHost: x\r\nx-user: alice\r\n\r\n"))); err != nil {
		t.Fatal(err)
	}
	k, ok := f(&ctx, netip.Addr{})
	if !ok || k != balancer.HashKey([]byte("alice")) {
		t.Fatalf("key of a lowercase header: %v %v", k, ok)
	}
}

// --- point 2: a client's error is the client's ---

func TestClientErrorsNeverReachOrCountAgainstBackends(t *testing.T) {
	rb := startRawBackend(t, eioRaw)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	for _, c := range []struct{ name, req string }{
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n"},
		{"CONNECT", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n"},
		{"asterisk-form GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"Content-Length and Transfer-Encoding", "POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"obs-fold", "GET /app HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n"},
	} {
		before := rb.nreq.Load()
		r := exchange(t, p.addr, c.req)
		if r.Status < 400 || r.Status > 499 {
			t.Errorf("%s: %d %q, want a 4xx", c.name, r.Status, r.Head)
		}
		if n := rb.nreq.Load() - before; n != 0 {
			t.Errorf("%s: reached the backend (%d requests)", c.name, n)
		}
	}
	if f := p.bal.Stats("raw").Failures.Load(); f != 0 {
		t.Errorf("backend failures = %d, want 0", f)
	}
	if n := p.Table().Len(); n != 0 {
		t.Errorf("%d sessions created", n)
	}
}

func TestAbsoluteFormIsRewrittenToOriginForm(t *testing.T) {
	rb := startRawBackend(t, eioRaw)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	for _, scheme := range []string{"http", "https"} {
		r := exchange(t, p.addr, "GET "+scheme+"://front.example/socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: other\r\n\r\n")
		if r.Status != 200 || !strings.Contains(r.Body, `"sid":"`) {
			t.Fatalf("%s absolute-form handshake: %d %q %q", scheme, r.Status, r.Head, r.Body)
		}
		q := rb.lastReq(t)
		if q.Line != "GET /socket.io/?EIO=4&transport=polling HTTP/1.1" {
			t.Errorf("%s: backend request line %q", scheme, q.Line)
		}
		if got := q.values("Host"); len(got) != 1 || got[0] != "front.example" {
			t.Errorf("%s: backend Host %q, want the target's authority", scheme, got)
		}
	}
	if f := p.bal.Stats("raw").Failures.Load(); f != 0 {
		t.Errorf("backend failures = %d, want 0", f)
	}
}

func TestUnansweredUpgradeOnOtherPathIsNotABackendFailure(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if strings.Contains(r.Line, "/chat") {
			return rawAnswer{Hang: true}
		}
		return okAnswer("raw")
	})
	p := startProxyOpts(t, nil, []balancer.Spec{rb.spec("raw")}, withUpgradeTimeout(500*time.Millisecond))
	r := exchange(t, p.addr, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+wsKey+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if r.Status != 504 {
		t.Fatalf("unanswered upgrade: %d %q, want 504", r.Status, r.Head)
	}
	if f := p.bal.Stats("raw").Failures.Load(); f != 0 {
		t.Fatalf("backend failures = %d, want 0", f)
	}
}

func TestConnectionLimitIsNotABackendFailure(t *testing.T) {
	hold := make(chan struct{})
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if strings.Contains(r.Line, "/slow") {
			<-hold
		}
		return eioRaw(r)
	})
	defer close(hold)
	p := startProxyOpts(t, func(s *Settings) { s.MaxConnsPerBackend = 1 }, []balancer.Spec{rb.spec("raw")}, withConnWaitTimeout(300*time.Millisecond))
	sid := string(mustHandshakeRaw(t, p.addr))
	slow := dialRaw(t, p.addr)
	slow.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, func() bool { return rb.nreq.Load() >= 2 })
	r := exchange(t, p.addr, "GET /socket.io/?EIO=4&transport=polling&sid="+sid+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if r.Status != 503 || len(r.values("Retry-After")) != 1 {
		t.Fatalf("poll while the only connection is busy: %d %q, want 503 with Retry-After", r.Status, r.Head)
	}
	if f := p.bal.Stats("raw").Failures.Load(); f != 0 {
		t.Errorf("backend failures = %d, want 0", f)
	}
	if p.Table().Len() != 1 {
		t.Errorf("the session was ended by a local limit (table %d)", p.Table().Len())
	}
}

func mustHandshakeRaw(t *testing.T, addr string) []byte {
	t.Helper()
	r := exchange(t, addr, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
	hs, err := sticky.ParseHandshake([]byte(r.Body))
	if r.Status != 200 || err != nil {
		t.Fatalf("handshake: %d %q %v", r.Status, r.Body, err)
	}
	return hs.SID
}

// --- point 5: retries never duplicate ---

func TestPostIsNotResentAfterTheBackendClosed(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if strings.HasPrefix(r.Line, "POST ") {
			return rawAnswer{Close: true} // reads the request, answers nothing
		}
		return okAnswer("raw")
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	r := exchange(t, p.addr, "POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	if r.Status != 502 {
		t.Fatalf("%d %q, want 502", r.Status, r.Head)
	}
	posts := 0
	for _, q := range rb.requests() {
		if strings.HasPrefix(q.Line, "POST ") {
			posts++
		}
	}
	if posts != 1 {
		t.Fatalf("the backend got the POST %d times, want once", posts)
	}
}

func TestStaleIdleConnectionIsRetriedOnce(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		a := okAnswer("raw")
		a.Close = r.ConnUses == 1 && r.Conn == 1 // the first connection closes right after its answer
		return a
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	if r := exchange(t, p.addr, "GET /app HTTP/1.1\r\nHost: x\r\n\r\n"); r.Status != 200 {
		t.Fatal(r.Status)
	}
	r := exchange(t, p.addr, "POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	if r.Status != 200 {
		t.Fatalf("POST after the pooled connection closed: %d %q", r.Status, r.Head)
	}
	rs := rb.requests()
	if len(rs) != 2 || rs[1].Conn != 2 || string(rs[1].Body) != "hello" {
		t.Fatalf("requests at the backend: %d (want 2, the POST once, on a new connection)", len(rs))
	}
}

func TestRetriedHandshakeAppendsForwardedForOnce(t *testing.T) {
	bad := startRawBackend(t, func(*rawReq) rawAnswer { return rawAnswer{Close: true} })
	good := startRawBackend(t, eioRaw)
	p := startProxy(t, nil, []balancer.Spec{bad.spec("a-bad"), good.spec("b-good")})
	for i := 0; i < 4; i++ { // round robin: some handshakes try the bad backend first
		r := exchange(t, p.addr, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.1\r\n\r\n")
		if r.Status != 200 {
			t.Fatalf("handshake %d: %d %q", i, r.Status, r.Head)
		}
	}
	if bad.nreq.Load() == 0 {
		t.Fatal("no handshake tried the bad backend")
	}
	for _, q := range good.requests() {
		if got := q.values("X-Forwarded-For"); len(got) != 1 || got[0] != "203.0.113.1, 127.0.0.1" {
			t.Fatalf("X-Forwarded-For at the second backend: %q", got)
		}
	}
}

func TestPollTimeoutIsNotRetried(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if strings.Contains(r.Line, "sid=") {
			return rawAnswer{Hang: true}
		}
		return eioRaw(r)
	})
	p := startProxy(t, func(s *Settings) { s.UpstreamTimeout = 300 * time.Millisecond }, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	r := exchange(t, p.addr, "GET /socket.io/?EIO=4&transport=polling&sid="+sid+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if r.Status < 400 {
		t.Fatalf("timed-out poll: %d", r.Status)
	}
	polls := 0
	for _, q := range rb.requests() {
		if strings.Contains(q.Line, "sid=") {
			polls++
		}
	}
	if polls != 1 {
		t.Fatalf("the backend got the poll %d times, want once", polls)
	}
}

func TestPostOnOtherPathDoesNotMoveToAnotherBackend(t *testing.T) {
	bad := startRawBackend(t, func(*rawReq) rawAnswer { return rawAnswer{Close: true} })
	good := startRawBackend(t, nil)
	p := startProxy(t, nil, []balancer.Spec{bad.spec("a-bad"), good.spec("b-good")})
	for i := 0; i < 4; i++ {
		exchange(t, p.addr, "POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	}
	if bad.nreq.Load() == 0 {
		t.Fatal("no POST reached the bad backend")
	}
	if got := good.nreq.Load() + bad.nreq.Load(); got != 4 {
		t.Fatalf("4 POSTs reached backends %d times", got)
	}
}

// --- point 10: one Connection header ---

func TestOneConnectionHeader(t *testing.T) {
	rb := startRawBackend(t, eioRaw)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	for _, c := range []struct{ name, req, want string }{
		{"handshake, close", "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "close"},
		{"post, close", "POST /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40", "close"},
		{"poll, keep-alive", "GET /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n\r\n", ""},
		{"poll, HTTP/1.0 keep-alive", "GET /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", "keep-alive"},
	} {
		r := exchange(t, p.addr, c.req)
		if r.Status != 200 {
			t.Fatalf("%s: %d %q", c.name, r.Status, r.Head)
		}
		got := r.values("Connection")
		if c.want == "" && len(got) != 0 || c.want != "" && (len(got) != 1 || !strings.EqualFold(got[0], c.want)) {
			t.Errorf("%s: Connection %q, want %q\n%s", c.name, got, c.want, r.Head)
		}
		if got := r.values("Keep-Alive"); len(got) != 0 {
			t.Errorf("%s: the backend's Keep-Alive reached the client: %q", c.name, got)
		}
	}
}

var _ = net.Dial

// eioRawNamed is eioRaw for a backend that owns its sessions: its handshakes issue name+"-sid-N",
// and a poll or POST for a sid it did not issue gets Engine.IO's 400 code 1.
func eioRawNamed(name string) func(r *rawReq) rawAnswer {
	var mu sync.Mutex
	issued := map[string]bool{}
	return func(r *rawReq) rawAnswer {
		if !strings.Contains(r.Line, "/socket.io/") {
			return okAnswer(name)
		}
		sid := r.query().Get("sid")
		mu.Lock()
		defer mu.Unlock()
		switch {
		case sid == "":
			sid = fmt.Sprintf("%s-sid-%d", name, len(issued)+1)
			issued[sid] = true
			body := handshakeBody(sid)
			return rawAnswer{Resp: fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s", len(body), body)}
		case !issued[sid]:
			body := `{"code":1,"message":"Session ID unknown"}`
			return rawAnswer{Resp: fmt.Sprintf("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)}
		case strings.HasPrefix(r.Line, "POST "):
			return rawAnswer{Resp: "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok"}
		}
		body := "4" + name
		return rawAnswer{Resp: fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s", len(body), body)}
	}
}

func TestStaleIdleConnectionIsRetriedForGET(t *testing.T) {
	// The backend closes its side right after each answer but says nothing: the proxy's pooled
	// connection is dead when the next GET comes; it goes again on a new one (a GET may).
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		a := okAnswer("raw")
		a.Close = true
		return a
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	for i := 0; i < 3; i++ {
		if r := exchange(t, p.addr, "GET /app HTTP/1.1\r\nHost: x\r\n\r\n"); r.Status != 200 || r.Body != "raw" {
			t.Fatalf("GET %d: %d %q", i, r.Status, r.Body)
		}
	}
	if f := p.bal.Stats("raw").Failures.Load(); f != 0 {
		t.Fatalf("a closed idle connection counted as a backend failure (%d)", f)
	}
}

func TestWaitingRequestTakesTheNextReleasedConnection(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		a := okAnswer("raw")
		if strings.Contains(r.Line, "/slow") {
			a.Delay = 300 * time.Millisecond
		}
		return a
	})
	p := startProxy(t, func(s *Settings) { s.MaxConnsPerBackend = 1 }, []balancer.Spec{rb.spec("raw")})
	slow := dialRaw(t, p.addr)
	slow.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, func() bool { return rb.nreq.Load() == 1 })
	r := exchange(t, p.addr, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n") // waits for the slow one's connection
	if r.Status != 200 {
		t.Fatalf("waiting request: %d", r.Status)
	}
	if s := slow.read(5*time.Second, false); s.Status != 200 {
		t.Fatalf("slow request: %d", s.Status)
	}
	if n := rb.conns.Load(); n != 1 {
		t.Fatalf("%d backend connections, want 1 (the limit)", n)
	}
}

// A reload's upstream_timeout reaches a backend that existed before it (issue 9): the proxy starts
// with a long timeout, the backend's pool is in use, then Apply shortens it and the next hanging
// poll to that same backend ends at the new timeout, not the old one.
func TestReloadedUpstreamTimeoutReachesExistingBackend(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if strings.Contains(r.Line, "sid=") {
			return rawAnswer{Hang: true}
		}
		return eioRaw(r)
	})
	p := startProxy(t, func(s *Settings) { s.UpstreamTimeout = time.Hour }, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr)) // the backend's pool exists and has served
	s := p.rt.Load().Settings
	s.UpstreamTimeout = 300 * time.Millisecond
	p.Apply(s)
	// The backend never answers: any answer within exchange's 5 s is the new timeout's (with the
	// old one, an hour, still in force this fails). A sid'd request whose owner timed out is told
	// "Session ID unknown" (400), and the timeout counts against the owner.
	r := exchange(t, p.addr, "GET /socket.io/?EIO=4&transport=polling&sid="+sid+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if r.Status != 400 {
		t.Fatalf("poll past the reloaded upstream timeout: %d, want 400 (owner unreachable)", r.Status)
	}
	if n := p.bal.Stats("raw").Failures.Load(); n != 1 {
		t.Fatalf("the timeout counted %d failures against the backend, want 1", n)
	}
}

// A 5xx answer to a handshake is the backend's own failure and counts against it (SECURITY.md); a
// 4xx answer is the client's and does not.
func TestHandshake5xxCountsAgainstTheBackend(t *testing.T) {
	var status atomic.Value
	status.Store("503 Service Unavailable")
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		return rawAnswer{Resp: "HTTP/1.1 " + status.Load().(string) + "\r\nContent-Length: 0\r\n\r\n"}
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	hs := "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"
	if r := exchange(t, p.addr, hs); r.Status != 503 {
		t.Fatalf("handshake answered 503 by the backend: client got %d", r.Status)
	}
	const id = "raw"
	if n := p.bal.Stats(id).Failures.Load(); n != 1 {
		t.Fatalf("a 503 to a handshake counted %d failures, want 1", n)
	}
	status.Store("400 Bad Request")
	if r := exchange(t, p.addr, hs); r.Status != 400 {
		t.Fatalf("handshake answered 400 by the backend: client got %d", r.Status)
	}
	if n := p.bal.Stats(id).Failures.Load(); n != 1 {
		t.Fatalf("a 400 to a handshake counted against the backend (failures %d, want still 1)", n)
	}
}
