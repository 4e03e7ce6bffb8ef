package pysio

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"sioproxy/test/testkit"
)

const (
	serverSessions = 30 // per transport mode, all at once
	serverEmits    = 5
)

// TestPythonServers puts three python-socketio servers behind sioproxy and runs real
// socket.io-client@4 sessions in every transport mode, each sending the Origin of the proxy as a
// browser page served through it would: python-engineio's default CORS rule admits only its own
// origin, which it derives from Host and X-Forwarded-Proto/-Host, so the proxy's forwarded headers
// decide whether browsers get in. Every session must succeed on one backend (acks, a binary round
// trip, the upgrade where asked), new sessions must spread, no backend may see a request of a
// session it does not own, and each owner must have counted the session's requests. Then one
// server is killed under held sessions (see checkFailover).
func TestPythonServers(t *testing.T) {
	bs := startPyServers(t, 3, "py%d")
	px := startProxy(t, bs)

	t.Run("origin", func(t *testing.T) { checkOrigins(t, px) })
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			start := time.Now()
			sum := runNodeClients(t, testkit.ClientOpts{URL: px.URL(), Mode: m.name, N: serverSessions,
				Emits: serverEmits, Concurrency: serverSessions, Origin: px.URL()})
			t.Logf("%d sessions in %v (clients.js %d ms), by backend %v", len(sum.Sessions), time.Since(start).Round(time.Millisecond), sum.Ms, sum.ByBackend)
			assertSessions(t, sum.Sessions, serverSessions, m.name, m.endTransport)
			assertSpread(t, sum.ByBackend, bs, 0.2)
			var checks []ownerCheck
			for _, s := range sum.Sessions {
				if len(s.Backends) == 1 {
					checks = append(checks, ownerCheck{ID: s.ID, Backend: s.Backends[0], RawSID: untagged(s.SID), MinRequests: m.minRequests(serverEmits)})
				}
			}
			assertOwners(t, checks, bs)
		})
	}
	assertNoMisrouted(t, bs)
	// Last, as it kills one of the servers.
	t.Run("failover", func(t *testing.T) { checkFailover(t, bs, px) })
}

// checkOrigins asserts what python-engineio answers through the proxy to a handshake from the
// proxy's own origin (200, the origin allowed) and from another one (its refusal, relayed as is:
// 400 and the reason, on polling and on a WebSocket handshake).
func checkOrigins(t *testing.T, px *testkit.Proxy) {
	handshake := px.URL() + "/socket.io/?EIO=4&transport=polling"
	get := func(origin string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, handshake, nil)
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("handshake with Origin %s: %v", origin, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	if code, body, h := get(px.URL()); code != http.StatusOK || !strings.HasPrefix(body, `0{"sid":"`) || h.Get("Access-Control-Allow-Origin") != px.URL() {
		t.Errorf("handshake from the proxy's origin: %d %q, Access-Control-Allow-Origin %q; want 200, an open packet, the origin",
			code, body, h.Get("Access-Control-Allow-Origin"))
	}
	const foreign = "http://elsewhere.example"
	if code, body, _ := get(foreign); code != http.StatusBadRequest || !strings.Contains(body, "not an accepted origin") {
		t.Errorf("handshake from %s: %d %q, want 400 and python-engineio's refusal", foreign, code, body)
	}
	ws := "ws://" + px.Addr + "/socket.io/?EIO=4&transport=websocket"
	c, resp, err := websocket.DefaultDialer.Dial(ws, http.Header{"Origin": {foreign}})
	if err == nil {
		c.Close()
		t.Fatalf("WebSocket handshake from %s was accepted", foreign)
	}
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("WebSocket handshake from %s: %v (response %v), want 400", foreign, err, resp)
	}
	c, _, err = websocket.DefaultDialer.Dial(ws, http.Header{"Origin": {px.URL()}})
	if err != nil {
		t.Fatalf("WebSocket handshake from the proxy's origin: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, open, err := c.ReadMessage()
	c.Close()
	if err != nil || !strings.HasPrefix(string(open), `0{"sid":"`) {
		t.Errorf("WebSocket from the proxy's origin: first frame %q, %v; want the open packet", open, err)
	}
}
