package eioserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"sioproxy/eioserver/eiotest"
)

func wsURL(base, query string) string {
	return "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?" + query
}

func dialWS(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.DialContext(testCtx(t), url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	return conn
}

func readText(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	typ, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("frame type %d %q, want text", typ, msg)
	}
	return string(msg)
}

func writeText(t *testing.T, conn *websocket.Conn, s string) {
	t.Helper()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

func TestWebSocketOnly(t *testing.T) {
	_, base := startServer(t, Options{Name: "ws1"})
	conn := dialWS(t, wsURL(base, "EIO=4&transport=websocket"))
	open := readText(t, conn)
	if !strings.HasPrefix(open, `0{"sid":"`) || !strings.Contains(open, `"upgrades":[]`) {
		t.Fatalf("first frame %q", open)
	}
	writeText(t, conn, "40")
	if msg := readText(t, conn); !strings.HasPrefix(msg, `40{"sid":"`) {
		t.Fatalf("connect reply %q", msg)
	}
	writeText(t, conn, `423["whoami"]`)
	if msg := readText(t, conn); msg != `433[{"backend":"ws1","transport":"websocket"}]` {
		t.Fatalf("whoami %q", msg)
	}
	// Binary echo: attachments travel as binary frames.
	writeText(t, conn, `451-4["echo",{"_placeholder":true,"num":0}]`)
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if msg := readText(t, conn); msg != `461-4[{"backend":"ws1","data":{"_placeholder":true,"num":0}}]` {
		t.Fatalf("binary ack header %q", msg)
	}
	typ, b, err := conn.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("attachment %d %v %v", typ, b, err)
	}
}

func TestWebSocketHandshakeErrors(t *testing.T) {
	_, base := startServer(t, Options{})
	tests := []struct{ name, query, body string }{
		{"unknown sid", "EIO=4&transport=websocket&sid=nope", "Session ID unknown"},
		{"EIO 3", "EIO=3&transport=websocket", "Unsupported protocol version"},
		{"bad transport", "EIO=4&transport=carrier", "Transport unknown"},
		{"polling transport", "EIO=4&transport=polling", "Bad request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := websocket.DefaultDialer.DialContext(testCtx(t), wsURL(base, tc.query), nil)
			if err == nil || resp == nil || resp.StatusCode != 400 {
				t.Fatalf("want 400, got %v %v", resp, err)
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if b.String() != tc.body || resp.Header.Get("Content-Type") != "text/html" {
				t.Fatalf("body %q content-type %q", b.String(), resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestUpgradeFlow(t *testing.T) {
	pw := make(pollWatcher, 8)
	srv, base := startServer(t, Options{Name: "up"}, pw.watch)
	sid := handshake(t, base)
	u := base + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	do(t, "POST", u, "40")
	if res := do(t, "GET", u, ""); !strings.HasPrefix(res.body, "40") {
		t.Fatalf("connect %q", res.body)
	}
	pending := make(chan httpResult, 1)
	go func() { pending <- do(t, "GET", u, "") }()
	pw.expect(t, sid)

	conn := dialWS(t, wsURL(base, "EIO=4&transport=websocket&sid="+sid))
	writeText(t, conn, "2probe")
	if msg := readText(t, conn); msg != "3probe" {
		t.Fatalf("probe answer %q", msg)
	}
	// A second WebSocket for the same sid gets its 101 and is closed at once. (It is dialled once
	// the first probe answered: a 101 is written before its handler runs, so two probes dialled
	// back to back could register in either order.)
	second := dialWS(t, wsURL(base, "EIO=4&transport=websocket&sid="+sid))
	if _, _, err := second.ReadMessage(); err == nil {
		t.Fatal("second probe WebSocket stayed open")
	}
	if res := <-pending; res.body != "6" {
		t.Fatalf("pending GET got %q, want noop", res.body)
	}
	srv.Broadcast("during", 1) // queued while upgrading, flushed on the WebSocket after "5"
	writeText(t, conn, "5")
	if msg := readText(t, conn); msg != `42["during",1]` {
		t.Fatalf("flushed %q", msg)
	}
	writeText(t, conn, `420["whoami"]`)
	if msg := readText(t, conn); msg != `430[{"backend":"up","transport":"websocket"}]` {
		t.Fatalf("whoami %q", msg)
	}
	if res := do(t, "GET", u, ""); res.status != 400 || res.body != `{"code":3,"message":"Bad request"}` {
		t.Fatalf("polling after upgrade: %d %q", res.status, res.body)
	}
}

func TestUpgradeTimeoutKeepsPolling(t *testing.T) {
	_, base := startServer(t, Options{UpgradeTimeout: 20 * time.Millisecond})
	sid := handshake(t, base)
	conn := dialWS(t, wsURL(base, "EIO=4&transport=websocket&sid="+sid))
	writeText(t, conn, "2probe")
	if msg := readText(t, conn); msg != "3probe" {
		t.Fatalf("probe answer %q", msg)
	}
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("probe not closed after the upgrade timeout")
	}
	u := base + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if res := do(t, "POST", u, "40"); res.body != "ok" {
		t.Fatalf("POST after failed upgrade: %d %q", res.status, res.body)
	}
	if res := do(t, "GET", u, ""); !strings.HasPrefix(res.body, "40{") {
		t.Fatalf("GET after failed upgrade: %d %q", res.status, res.body)
	}
}

func TestClientModes(t *testing.T) {
	srv, base := startServer(t, Options{Name: "cm"})
	for _, mode := range []eiotest.Mode{eiotest.Polling, eiotest.Upgrade, eiotest.WebSocket} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := testCtx(t)
			c, err := eiotest.Dial(ctx, base+"/socket.io/", mode)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			wantTransport := map[eiotest.Mode]string{eiotest.Polling: "polling", eiotest.Upgrade: "websocket", eiotest.WebSocket: "websocket"}[mode]
			ack, err := c.EmitAck(ctx, "whoami")
			if err != nil {
				t.Fatal(err)
			}
			if got := string(ack.Args[0]); got != fmt.Sprintf(`{"backend":"cm","transport":%q}`, wantTransport) {
				t.Fatalf("whoami %s", got)
			}
			ack, err = c.EmitAck(ctx, "echo", map[string]int{"n": 1})
			if err != nil || string(ack.Args[0]) != `{"backend":"cm","data":{"n":1}}` {
				t.Fatalf("echo %s %v", ack.Args, err)
			}
			payload := bytes.Repeat([]byte{0, 1, 2, 0xff}, 300)
			ack, err = c.EmitAck(ctx, "echo", payload)
			if err != nil || len(ack.Attachments) != 1 || !bytes.Equal(ack.Attachments[0], payload) {
				t.Fatalf("binary echo: %v %v", ack, err)
			}
			var v struct {
				Data struct {
					Placeholder bool `json:"_placeholder"`
				} `json:"data"`
			}
			if err := json.Unmarshal(ack.Args[0], &v); err != nil || !v.Data.Placeholder {
				t.Fatalf("binary echo args %s", ack.Args[0])
			}
			srv.Broadcast("tick", "x", []byte{9})
			select {
			case ev := <-c.Events:
				if ev.Name != "tick" || string(ev.Args[0]) != `"x"` || !bytes.Equal(ev.Attachments[0], []byte{9}) {
					t.Fatalf("event %+v", ev)
				}
			case <-ctx.Done():
				t.Fatal("no broadcast received")
			}
		})
	}
}

func TestEmitAndDisconnect(t *testing.T) {
	connected := make(chan *Socket, 1)
	gone := make(chan string, 1)
	_, base := startServer(t, Options{
		OnConnect:    func(s *Socket) { connected <- s },
		OnDisconnect: func(s *Socket, reason string) { gone <- reason },
	})
	ctx := testCtx(t)
	c, err := eiotest.Dial(ctx, base+"/socket.io/", eiotest.WebSocket)
	if err != nil {
		t.Fatal(err)
	}
	so := <-connected
	if so.SessionID() != c.SID || so.ID() == c.SID || so.Transport() != "websocket" {
		t.Fatalf("socket ids %q %q transport %q, client sid %q", so.ID(), so.SessionID(), so.Transport(), c.SID)
	}
	so.Emit("hello", "you")
	if ev := <-c.Events; ev.Name != "hello" || string(ev.Args[0]) != `"you"` {
		t.Fatalf("event %+v", ev)
	}
	so.Disconnect()
	<-c.Closed
	if reason := <-gone; reason != "server namespace disconnect" {
		t.Fatalf("disconnect reason %q", reason)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	srv, base := startServer(t, Options{})
	ctx := testCtx(t)
	var clients []*eiotest.Client
	for _, mode := range []eiotest.Mode{eiotest.Polling, eiotest.Upgrade, eiotest.WebSocket} {
		c, err := eiotest.Dial(ctx, base+"/socket.io/", mode)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	if n := srv.Sessions(); n != 3 {
		t.Fatalf("Sessions() = %d, want 3", n)
	}
	srv.Close()
	for _, c := range clients {
		select {
		case <-c.Closed:
		case <-ctx.Done():
			t.Fatal("client not closed by Server.Close")
		}
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("Sessions() = %d after Close", n)
	}
	if res := do(t, "GET", base+"/socket.io/?EIO=4&transport=polling", ""); res.status != 503 {
		t.Fatalf("handshake after Close: %d", res.status)
	}
}
