package eioserver

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestHandshakePolling(t *testing.T) {
	_, base := startServer(t, Options{Name: "b1"})
	res := do(t, "GET", base+"/socket.io/?EIO=4&transport=polling&t=abc", "")
	if res.status != 200 || res.ctype != "text/plain; charset=UTF-8" {
		t.Fatalf("status %d content-type %q", res.status, res.ctype)
	}
	if res.body[0] != '0' {
		t.Fatalf("body %q is not an open packet", res.body)
	}
	var open struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		PingTimeout  int      `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}
	if err := json.Unmarshal([]byte(res.body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	if len(open.SID) != 20 || len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" ||
		open.PingInterval != 25000 || open.PingTimeout != 20000 || open.MaxPayload != 1000000 {
		t.Fatalf("open packet %+v", open)
	}
}

func TestErrors(t *testing.T) {
	_, base := startServer(t, Options{})
	sid := handshake(t, base)
	tests := []struct {
		name, method, query string
		status              int
		body                string
	}{
		{"no transport", "GET", "EIO=4", 400, `{"code":0,"message":"Transport unknown"}`},
		{"bad transport", "GET", "EIO=4&transport=flash", 400, `{"code":0,"message":"Transport unknown"}`},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", 400, `{"code":1,"message":"Session ID unknown"}`},
		{"post handshake", "POST", "EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"options handshake", "OPTIONS", "EIO=4&transport=polling", 400, `{"code":2,"message":"Bad handshake method"}`},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", 400, `{"code":3,"message":"Bad request"}`},
		{"websocket query on polling sid", "GET", "EIO=4&transport=websocket&sid=" + sid, 400, `{"code":3,"message":"Bad request"}`},
		{"EIO 3", "GET", "EIO=3&transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
		{"EIO missing", "GET", "transport=polling", 400, `{"code":5,"message":"Unsupported protocol version"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, tc.method, base+"/socket.io/?"+tc.query, "x")
			if res.status != tc.status || res.body != tc.body {
				t.Fatalf("got %d %q, want %d %q", res.status, res.body, tc.status, tc.body)
			}
			if res.ctype != "application/json" {
				t.Fatalf("content-type %q", res.ctype)
			}
		})
	}
}

func TestFallbackAndPrefix(t *testing.T) {
	_, base := startServer(t, Options{Path: "/eio/"})
	if res := do(t, "GET", base+"/other", ""); res.status != 404 {
		t.Fatalf("fallback: %d", res.status)
	}
	if res := do(t, "GET", base+"/eio/anything?EIO=4&transport=polling", ""); res.status != 200 {
		t.Fatalf("prefix match: %d %q", res.status, res.body)
	}
}

func TestPollingExchange(t *testing.T) {
	_, base := startServer(t, Options{Name: "b1"})
	sid := handshake(t, base)
	u := base + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	post := func(body string) {
		t.Helper()
		res := do(t, "POST", u, body, "Content-Type", "text/plain;charset=UTF-8")
		if res.status != 200 || res.body != "ok" || res.ctype != "text/html" {
			t.Fatalf("POST %q: %d %q %q", body, res.status, res.ctype, res.body)
		}
	}
	post("40")
	res := do(t, "GET", u, "")
	if !strings.HasPrefix(res.body, `40{"sid":"`) {
		t.Fatalf("connect reply %q", res.body)
	}
	// Two packets in one payload: a text echo with ack 7 and whoami with ack 8.
	post("421[\"echo\",\"hi\"]\x1e428[\"whoami\"]")
	res = do(t, "GET", u, "")
	want := `431[{"backend":"b1","data":"hi"}]` + "\x1e" + `438[{"backend":"b1","transport":"polling"}]`
	if res.body != want {
		t.Fatalf("acks %q, want %q", res.body, want)
	}
	// Binary echo: one attachment as a base64 record.
	post("451-2[\"echo\",{\"_placeholder\":true,\"num\":0}]\x1ebAQIDBA==")
	res = do(t, "GET", u, "")
	want = `461-2[{"backend":"b1","data":{"_placeholder":true,"num":0}}]` + "\x1ebAQIDBA=="
	if res.body != want {
		t.Fatalf("binary ack %q, want %q", res.body, want)
	}
}

func TestLongPollAnswersWhenPacketQueued(t *testing.T) {
	pw := make(pollWatcher, 8)
	srv, base := startServer(t, Options{}, pw.watch)
	sid := handshake(t, base)
	u := base + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	do(t, "POST", u, "40")
	if res := do(t, "GET", u, ""); !strings.HasPrefix(res.body, "40") {
		t.Fatalf("connect reply %q", res.body)
	}
	got := make(chan httpResult, 1)
	go func() { got <- do(t, "GET", u, "") }()
	pw.expect(t, sid)
	srv.Broadcast("news", "hello", 1)
	if res := <-got; res.body != `42["news","hello",1]` {
		t.Fatalf("long poll got %q", res.body)
	}
}

func TestOverlappingGETCloses(t *testing.T) {
	w, pw := make(closeWatcher, 8), make(pollWatcher, 8)
	_, base := startServer(t, Options{}, w.watch, pw.watch)
	sid := handshake(t, base)
	u := base + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	first := make(chan httpResult, 1)
	go func() { first <- do(t, "GET", u, "") }()
	pw.expect(t, sid)
	if res := do(t, "GET", u, ""); res.status != 400 || res.body != "" {
		t.Fatalf("second GET: %d %q", res.status, res.body)
	}
	if reason := w.expect(t, sid); reason != "overlapping GET" {
		t.Fatalf("close reason %q", reason)
	}
	if res := <-first; res.body != "1" {
		t.Fatalf("pending GET got %q, want close packet", res.body)
	}
	if res := do(t, "GET", u, ""); res.status != 400 || !strings.Contains(res.body, `"code":1`) {
		t.Fatalf("after close: %d %q", res.status, res.body)
	}
}

func TestClientClosePacket(t *testing.T) {
	w := make(closeWatcher, 8)
	srv, base := startServer(t, Options{}, w.watch)
	sid := handshake(t, base)
	do(t, "POST", base+"/socket.io/?EIO=4&transport=polling&sid="+sid, "1")
	if reason := w.expect(t, sid); reason != "transport close" {
		t.Fatalf("reason %q", reason)
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("Sessions() = %d", n)
	}
}

func TestBadPayloadAndOversize(t *testing.T) {
	tests := []struct {
		name, body, ctype string
		status            int
		reason            string
	}{
		{"unknown packet type", "9x", "text/plain", 400, "parse error"},
		{"bad base64", "b!!!", "text/plain", 400, "parse error"},
		{"bad socket.io", "4x", "text/plain", 200, "parse error"},
		{"binary framing", "40", "application/octet-stream", 400, "binary polling payload"},
		{"too large", strings.Repeat("4", 2000), "text/plain", 413, "payload too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := make(closeWatcher, 8)
			_, base := startServer(t, Options{MaxPayload: 1000}, w.watch)
			sid := handshake(t, base)
			res := do(t, "POST", base+"/socket.io/?EIO=4&transport=polling&sid="+sid, tc.body, "Content-Type", tc.ctype)
			if res.status != tc.status {
				t.Fatalf("status %d %q, want %d", res.status, res.body, tc.status)
			}
			if reason := w.expect(t, sid); reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
		})
	}
}

func TestPingTimeoutShortIntervals(t *testing.T) {
	w := make(closeWatcher, 8)
	_, base := startServer(t, Options{PingInterval: 30 * time.Millisecond, PingTimeout: 30 * time.Millisecond}, w.watch)
	sid := handshake(t, base)
	u := base + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	// The idle GET is answered by a ping within pingInterval.
	if res := do(t, "GET", u, ""); res.body != "2" {
		t.Fatalf("idle GET %q, want ping", res.body)
	}
	// A pong keeps the session; then no pong: it closes with "ping timeout".
	do(t, "POST", u, "3")
	if res := do(t, "GET", u, ""); res.body != "2" {
		t.Fatalf("second ping %q", res.body)
	}
	if reason := w.expect(t, sid); reason != "ping timeout" {
		t.Fatalf("reason %q", reason)
	}
}
