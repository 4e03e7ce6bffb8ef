package eioserver

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// benchSession opens a polling session on srv in process and connects its socket on "/"; it
// returns the session's polling query and the socket.
func benchSession(b *testing.B) (*Server, string, *Socket) {
	b.Helper()
	connected := make(chan *Socket, 1)
	srv := New(Options{Logger: zap.NewNop(), OnConnect: func(so *Socket) { connected <- so }})
	b.Cleanup(srv.Close)
	var ctx fasthttp.RequestCtx
	serve(srv, &ctx, "GET", "/socket.io/?EIO=4&transport=polling", "")
	body := string(ctx.Response.Body())
	if !strings.HasPrefix(body, `0{"sid":"`) {
		b.Fatalf("handshake %q", body)
	}
	sid := strings.TrimPrefix(body, `0{"sid":"`)
	uri := "/socket.io/?EIO=4&transport=polling&sid=" + sid[:strings.IndexByte(sid, '"')]
	serve(srv, &ctx, "POST", uri, "40")
	so := <-connected
	serve(srv, &ctx, "GET", uri, "") // the CONNECT reply
	return srv, uri, so
}

// serve runs srv.Handler on one in-memory request.
func serve(srv *Server, ctx *fasthttp.RequestCtx, method, uri, body string) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Init(&ctx.Request, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}, nil)
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.SetBodyString(body)
	srv.Handler(ctx)
}

// BenchmarkPollingPost decodes a polling payload of text, binary and heartbeat packets.
func BenchmarkPollingPost(b *testing.B) {
	srv, uri, _ := benchSession(b)
	body := "42[\"nohandler\",1]\x1ebAQIDBAUGBwgJCgsMDQ4P\x1e3\x1e6"
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		serve(srv, &ctx, "POST", uri, body)
		if !bytes.Equal(ctx.Response.Body(), []byte("ok")) {
			b.Fatalf("POST: %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkPollingGet emits an event with a binary attachment and drains it with a polling GET.
func BenchmarkPollingGet(b *testing.B) {
	srv, uri, so := benchSession(b)
	att := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		so.Emit("tick", "hello", att)
		serve(srv, &ctx, "GET", uri, "")
		if !bytes.HasPrefix(ctx.Response.Body(), []byte(`451-["tick"`)) {
			b.Fatalf("GET: %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkWebSocketEmit emits an event with a binary attachment to a WebSocket session on
// loopback and reads both frames back.
func BenchmarkWebSocketEmit(b *testing.B) {
	connected := make(chan *Socket, 1)
	srv := New(Options{Logger: zap.NewNop(), OnConnect: func(so *Socket) { connected <- so }})
	l, err := srv.Listen("127.0.0.1:0", "eioserver")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.Close)
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(l.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	read := func() []byte {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		return msg
	}
	read() // open
	if err := conn.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		b.Fatal(err)
	}
	so := <-connected
	read() // CONNECT reply
	att := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	b.ReportAllocs()
	for b.Loop() {
		so.Emit("tick", "hello", att)
		if msg := read(); !bytes.HasPrefix(msg, []byte(`451-["tick"`)) {
			b.Fatalf("got %q", msg)
		}
		if msg := read(); !bytes.Equal(msg, att) {
			b.Fatalf("attachment %q", msg)
		}
	}
}
