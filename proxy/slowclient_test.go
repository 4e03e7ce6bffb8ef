package proxy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"sioproxy/balancer"
)

// Slow clients (issue 10, point 4): the request head has its own short timeout, bodies are read as
// they arrive, a bare-LF request is refused at once, long-polls are never cut by client timeouts.

func TestHeaderTimeout(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, func(s *Settings) { s.HeaderTimeout = 300 * time.Millisecond }, []balancer.Spec{rb.spec("raw")})
	rc := dialRaw(t, p.addr)
	rc.send("GET /app HTTP/1.1\r\nHost: x\r\n") // and nothing more
	start := time.Now()
	if !rc.closedWithin(3 * time.Second) {
		t.Fatalf("a stalled request head is still open after %v", time.Since(start))
	}
	if rb.nreq.Load() != 0 {
		t.Fatal("the stalled request reached the backend")
	}
}

func TestSlowBodyOutlivesTheHeaderTimeout(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, func(s *Settings) { s.HeaderTimeout = 200 * time.Millisecond }, []balancer.Spec{rb.spec("raw")})
	rc := dialRaw(t, p.addr)
	rc.send("POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
	time.Sleep(600 * time.Millisecond) // the body trickles in past the header timeout
	rc.send("world")
	r := rc.read(5*time.Second, false)
	if r.Status != 200 {
		t.Fatalf("slow body: %d %q %v", r.Status, r.Head, r.Err)
	}
	if got := string(rb.lastReq(t).Body); got != "helloworld" {
		t.Fatalf("backend got body %q", got)
	}
}

func TestBareLFRequestGets400(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	for _, req := range []string{
		"GET /app HTTP/1.1\nHost: x\n\n",
		"GET /app HTTP/1.1\r\nHost: x\n\n",
		"GET /app HTTP/1.1\r\nHost: x\n\r\n",
	} {
		rc := dialRaw(t, p.addr)
		rc.send(req)
		r := rc.read(2*time.Second, false)
		if r.Status != 400 {
			t.Errorf("%q: %d %q %v, want 400 at once", req, r.Status, r.Head, r.Err)
		}
	}
	if rb.nreq.Load() != 0 {
		t.Fatal("a bare-LF request reached the backend")
	}
	// A body holding blank bare-LF lines is no head: it passes.
	r := exchange(t, p.addr, "POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\na\n\nb\n\n")
	if r.Status != 200 || string(rb.lastReq(t).Body) != "a\n\nb\n\n" {
		t.Fatalf("body with bare LFs: %d", r.Status)
	}
}

func TestLongPollOutlivesClientTimeouts(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		a := eioRaw(r)
		if r.query().Get("sid") != "" && strings.HasPrefix(r.Line, "GET ") {
			a.Delay = 700 * time.Millisecond
		}
		return a
	})
	p := startProxy(t, func(s *Settings) { s.HeaderTimeout, s.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond }, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	rc := dialRaw(t, p.addr)
	for i := 0; i < 2; i++ { // twice on one connection: keep-alive survives too
		rc.send("GET /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n\r\n")
		r := rc.read(5*time.Second, false)
		if r.Status != 200 || r.Body != "4hello" {
			t.Fatalf("long-poll %d: %d %q %v", i, r.Status, r.Body, r.Err)
		}
	}
}

func TestBodyLimitFollowsReload(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, func(s *Settings) { s.MaxBodyBytes = 100 }, []balancer.Spec{rb.spec("raw")})
	post := func(n int) int {
		return exchange(t, p.addr, "POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(n)+"\r\n\r\n"+strings.Repeat("x", n)).Status
	}
	if c := post(101); c != 413 {
		t.Fatalf("101 bytes over a limit of 100: %d", c)
	}
	s := p.rt.Load().Settings
	s.MaxBodyBytes = 1000
	p.Apply(s)
	if c := post(101); c != 200 {
		t.Fatalf("101 bytes after raising the limit to 1000: %d", c)
	}
	if c := post(1001); c != 413 {
		t.Fatalf("1001 bytes over a limit of 1000: %d", c)
	}
}

func TestBodyDeclaredOverTheLimitIsRefusedAtOnce(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, func(s *Settings) { s.MaxBodyBytes = 1000 }, []balancer.Spec{rb.spec("raw")})
	for _, req := range []string{
		"POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",                          // no body byte sent
		"POST /app HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + strings.Repeat("x", 1001), // all of it
	} {
		rc := dialRaw(t, p.addr)
		rc.send(req)
		if r := rc.read(2*time.Second, false); r.Status != 413 {
			t.Errorf("%.60q: %d %v, want 413 at once", req, r.Status, r.Err)
		}
		if !rc.closedWithin(2 * time.Second) {
			t.Errorf("%.60q: the connection stays open with an unread body", req)
		}
	}
	if rb.nreq.Load() != 0 {
		t.Fatal("an over-limit body reached the backend")
	}
	if r := exchange(t, p.addr, "GET /app HTTP/1.1\r\nHost: x\r\n\r\n"); r.Status != 200 {
		t.Fatalf("after: %d", r.Status)
	}
}

func TestUnknownHTTPVersionIsRefused(t *testing.T) {
	rb := startRawBackend(t, nil)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	if r := exchange(t, p.addr, "GET /app HTTP/1.7\r\nHost: x\r\n\r\n"); r.Status != 505 {
		t.Fatalf("HTTP/1.7: %d, want 505", r.Status)
	}
	if rb.nreq.Load() != 0 {
		t.Fatal("it reached the backend")
	}
}
