package hostile

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// startProxyWith starts a proxy from YAML (listen and admin filled in) and waits until it listens.
func startProxyWith(t *testing.T, yaml string) *testkit.Proxy {
	t.Helper()
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	full := fmt.Sprintf("listen: %q\nadmin:\n  listen: %q\nlog:\n  level: info\n%s", addr, admin, yaml)
	if err := os.WriteFile(cfg, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: admin, Args: []string{"-config", cfg}})
}

// TestUnrequested101 (#1): a backend that answers 101 to a request that asked for no upgrade. The
// proxy must not relay the 101 nor put that connection back in its pool: the client gets an error,
// the connection to the backend is closed, and the next request reaches the backend on a new one.
func TestUnrequested101(t *testing.T) {
	raw := testkit.StartRawBackend(t, func(c *testkit.RawBackendConn) {
		for {
			r, err := c.ReadRequest()
			if err != nil {
				return
			}
			if r.URI == "/bogus101" {
				_, _ = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
				_, _ = c.WaitPeerClose(30 * time.Second) // whatever comes now is not HTTP to this peer
				return
			}
			if c.Reply("200 OK", "raw ok", "Content-Type: text/plain") != nil {
				return
			}
		}
	})
	px := startProxyWith(t, fmt.Sprintf("backends:\n  - id: raw\n    url: %s\n", raw.URL()))

	conn, err := testkit.DialRaw(px.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Send(req("GET", "/bogus101"), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	resp, err := conn.ReadResponse(http.MethodGet, 5*time.Second)
	switch {
	case err != nil && resp == nil:
		t.Errorf("no answer to a request the backend answered 101: %v; want 502", err)
	case resp.Status != http.StatusBadGateway:
		t.Errorf("answer %s; want 502 (a 101 to a plain request is a broken answer)", resp)
	}
	// The proxy closes the connection that carried the 101.
	if !testkit.WaitFor(3*time.Second, func() bool { _, ok := raw.ClosedAt(1); return ok }) {
		t.Errorf("the proxy kept the backend connection that answered 101 open (it is no longer HTTP)")
	}
	// The next request gets an answer, on another backend connection.
	for i := 0; i < 3; i++ {
		c2, err := testkit.DialRaw(px.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c2.Send(req("GET", "/ok"), 3*time.Second)
		r2, err := c2.ReadResponse(http.MethodGet, 5*time.Second)
		c2.Close()
		if err != nil || r2.Status != http.StatusOK || string(r2.Body) != "raw ok" {
			t.Errorf("request %d after the 101: %v %v; want 200 \"raw ok\" (a poisoned pooled connection?)", i, r2, err)
		}
	}
	for _, r := range raw.Requests() {
		if r.URI == "/ok" && r.Conn == 1 {
			t.Errorf("a later request was sent on the connection that had answered 101")
		}
	}
	assertNoFailures(t, px)
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// TestLocalLimitIsNotABackendFailure (#2): when the proxy's own connection limit to a backend is
// reached (max_conns_per_backend, here held by a pending long-poll), the request waiting for a
// connection is refused with 503, and the backend is not counted as failing.
func TestLocalLimitIsNotABackendFailure(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "limit%d", "4", "--ping-interval", "12000")
	px := startProxyWith(t, fmt.Sprintf("backends:\n  - id: %s\n    url: %s\nproxy:\n  max_conns_per_backend: 1\n", bs[0].Name, bs[0].URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	sid, err := c.Handshake(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The pending poll holds the only connection to the backend until the server's ping (12 s).
	polled := make(chan error, 1)
	go func() {
		st, body, err := c.Get(ctx, sid)
		if err == nil && (st != http.StatusOK || body == "") {
			err = fmt.Errorf("poll: %d %q", st, body)
		}
		polled <- err
	}()
	if !testkit.WaitFor(5*time.Second, func() bool { return px.Backends(t)[bs[0].Name].InFlight == 1 }) {
		t.Fatalf("the poll is not in flight at the backend")
	}
	conn, err := testkit.DialRaw(px.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.Send(canaryRequest(), 3*time.Second)
	resp, err := conn.ReadResponse(http.MethodGet, 11*time.Second)
	switch {
	case err != nil:
		t.Errorf("request beyond max_conns_per_backend: %v; want 503", err)
	case resp.Status != http.StatusServiceUnavailable:
		t.Errorf("request beyond max_conns_per_backend: %s; want 503 (a local limit)", resp)
	}
	assertNoFailures(t, px)
	if err := <-polled; err != nil {
		t.Errorf("the long-poll that held the connection: %v", err)
	}
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}
