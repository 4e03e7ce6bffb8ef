package upstream

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

// openPacket is a v4 handshake answer with sid.
func openPacket(sid string) string {
	return `0{"sid":"` + sid + `","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
}

// isHandshake reports a polling handshake (no sid).
func isHandshake(r *testkit.RawRequest) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URI, "/socket.io/") && !strings.Contains(r.URI, "sid=")
}

// count returns how many requests of b satisfy match.
func count(b *testkit.RawBackend, match func(testkit.RawRequest) bool) int {
	n := 0
	for _, r := range b.Requests() {
		if match(r) {
			n++
		}
	}
	return n
}

func isPost(r testkit.RawRequest) bool { return r.Method == http.MethodPost }

// TestPollingPostNeverSentTwice (#5): the owner of a session reads a polling POST whole and then
// resets the connection. The POST reached the backend: the proxy must not send it again (engine.io
// would take the packets twice); the client is told the session is gone.
func TestPollingPostNeverSentTwice(t *testing.T) {
	raw := testkit.StartRawBackend(t, func(c *testkit.RawBackendConn) {
		for {
			r, err := c.ReadRequest()
			if err != nil {
				return
			}
			if r.Method == http.MethodPost {
				c.Reset() // read it all, then die before answering
				return
			}
			if c.Reply("200 OK", openPacket("RAWSESSION0000000001"), "Content-Type: text/plain; charset=UTF-8") != nil {
				return
			}
		}
	})
	px := startProxy(t, []backendEntry{{id: "raw", url: raw.URL()}}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	sid, err := c.Handshake(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, body, err := c.Post(ctx, sid, `42["chat","once"]`)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	if st != http.StatusBadRequest && st != http.StatusBadGateway {
		t.Errorf("POST to an owner that reset: %d %q; want 400 (session unknown) or 502", st, body)
	}
	if n := count(raw, isPost); n != 1 {
		t.Errorf("the backend received the POST %d times; want exactly once", n)
	}
	assertAlive(t, px)
}

// TestStaleIdleConnectionRetried (#5): the one retry that stays: a pooled connection the backend
// closed while idle (its keep-alive timeout) is found closed, and the request goes on a new
// connection. The backend sees the POST once and the client gets its "ok".
func TestStaleIdleConnectionRetried(t *testing.T) {
	raw := testkit.StartRawBackend(t, func(c *testkit.RawBackendConn) {
		for {
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) // a short keep-alive timeout
			r, err := c.ReadRequest()
			if err != nil {
				return // idle too long (or the peer closed): close, as Node does
			}
			_ = c.SetReadDeadline(time.Time{})
			if r.Method == http.MethodPost {
				err = c.Reply("200 OK", "ok", "Content-Type: text/html")
			} else {
				err = c.Reply("200 OK", openPacket("RAWSESSION0000000002"), "Content-Type: text/plain; charset=UTF-8")
			}
			if err != nil {
				return
			}
		}
	})
	px := startProxy(t, []backendEntry{{id: "raw", url: raw.URL()}}, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	sid, err := c.Handshake(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the backend has closed the pooled connection of the handshake.
	if !testkit.WaitFor(5*time.Second, func() bool { return raw.Conns() == 1 && time.Since(raw.Requests()[0].At) > time.Second }) {
		t.Fatal("setup: the handshake did not happen")
	}
	st, body, err := c.Post(ctx, sid, "6")
	if err != nil || st != http.StatusOK || body != "ok" {
		t.Errorf("POST after the backend closed the idle pooled connection: %d %q %v; want 200 \"ok\" (the stale connection retried)", st, body, err)
	}
	if n := count(raw, isPost); n != 1 {
		t.Errorf("the backend received the POST %d times; want once", n)
	}
	assertAlive(t, px)
}

// TestOnlyIdempotentRequestsMove (#5): two backends reset every POST after reading it, and one of
// them every handshake. A POST on another path is not sent to a second backend (it reached the
// first); a handshake moves to the other backend, with X-Forwarded-For appended once.
func TestOnlyIdempotentRequestsMove(t *testing.T) {
	handler := func(resetHandshake bool, sid string) func(c *testkit.RawBackendConn) {
		return func(c *testkit.RawBackendConn) {
			for {
				r, err := c.ReadRequest()
				if err != nil {
					return
				}
				if r.Method == http.MethodPost || (resetHandshake && isHandshake(r)) {
					c.Reset()
					return
				}
				if c.Reply("200 OK", openPacket(sid), "Content-Type: text/plain; charset=UTF-8") != nil {
					return
				}
			}
		}
	}
	// Each part has backends and a proxy of its own: the resets eject backends.
	start := func(t *testing.T) (a, b *testkit.RawBackend, px *testkit.Proxy) {
		a = testkit.StartRawBackend(t, handler(true, "SESSIONOFA0000000001"))
		b = testkit.StartRawBackend(t, handler(false, "SESSIONOFB0000000001"))
		px = startProxy(t, []backendEntry{{id: "a", url: a.URL()}, {id: "b", url: b.URL()}}, "balancer:\n  policy: round_robin\n")
		return a, b, px
	}
	t.Run("POST on another path", func(t *testing.T) {
		a, b, px := start(t)
		conn, err := testkit.DialRaw(px.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.Send([]byte("POST /upload HTTP/1.1\r\nHost: up.test\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nonce!"), 3*time.Second)
		resp, err := conn.ReadResponse(http.MethodPost, 10*time.Second)
		if err != nil || resp.Status != http.StatusBadGateway {
			t.Errorf("POST that a backend reset after reading: %v %v; want 502", resp, err)
		}
		if n := count(a, isPost) + count(b, isPost); n != 1 {
			t.Errorf("the POST reached backends %d times (a %d, b %d); want once", n, count(a, isPost), count(b, isPost))
		}
		assertAlive(t, px)
	})
	t.Run("handshake", func(t *testing.T) {
		a, b, px := start(t)
		// Round robin: one of two handshakes starts at a, which resets it; both must end at b.
		for i := 0; i < 2; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c := testkit.NewEIOClient(px.URL())
			sid, err := c.Handshake(ctx)
			cancel()
			c.CloseIdle()
			if err != nil || !strings.HasSuffix(sid, ".SESSIONOFB0000000001") {
				raw, tagged := testkit.RawSID(sid)
				t.Errorf("handshake %d: sid_hash %s (tagged %v, sid_hash %s after the tag), %v; want b's session (sid_hash %s), tagged",
					i, proxy.SIDHash(sid), tagged, proxy.SIDHash(raw), err, proxy.SIDHash("SESSIONOFB0000000001"))
			}
		}
		if count(a, func(r testkit.RawRequest) bool { return isHandshake(&r) }) == 0 {
			t.Fatalf("no handshake reached a: the retry was not exercised")
		}
		for _, r := range b.Requests() {
			if !isHandshake(&r) {
				continue
			}
			if got := r.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("b got X-Forwarded-For %q on a handshake; want [\"127.0.0.1\"] (appended once, whatever the retries)", got)
			}
		}
		assertAlive(t, px)
	})
}
