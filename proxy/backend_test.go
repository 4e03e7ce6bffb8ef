package proxy

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"sioproxy/sticky"
)

// testBackend is an Engine.IO-shaped backend for unit tests of the proxy (the end-to-end tests in
// test/ use real Socket.IO servers). It issues sids, answers polls for its own sids only (400 code 1
// otherwise, like engine.io), echoes WebSocket messages, and records what it received.
type testBackend struct {
	name string
	ln   net.Listener
	srv  *fasthttp.Server
	addr string

	mu       sync.Mutex
	sids     map[string]bool
	lastURI  string
	lastHdrs map[string]string
	n        atomic.Int64
	format   string // "v4" (default), "v3", "jsonp", "gzip"
	// closeGzip makes polls answer a gzipped close packet.
	closeGzip atomic.Bool
	// holdPolls makes a poll wait, as engine.io's does, until a close packet is posted for its
	// session (then it answers the close) or 5 s pass; closes counts the close packets posted per sid
	// (a close for a sid the backend does not know is counted under "?unknown").
	holdPolls atomic.Bool
	held      map[string]chan struct{}
	closes    map[string]int
}

func startBackend(t testing.TB, name string) *testBackend {
	t.Helper()
	return startBackendTLS(t, name, nil)
}

// startBackendTLS is startBackend serving TLS with cfg (nil: plain TCP).
func startBackendTLS(t testing.TB, name string, cfg *tls.Config) *testBackend {
	t.Helper()
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	b := &testBackend{name: name, ln: ln, addr: ln.Addr().String(), sids: map[string]bool{},
		held: map[string]chan struct{}{}, closes: map[string]int{}}
	up := websocket.FastHTTPUpgrader{CheckOrigin: func(*fasthttp.RequestCtx) bool { return true }}
	b.srv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		b.record(ctx)
		path := string(ctx.Path())
		if path == "/bare" {
			ctx.Response.Header.SetNoDefaultContentType(true)
			ctx.SetBodyString("no type")
			return
		}
		if path == "/socket.io/socket.io.js" { // what socket.io serves under its own path, sid or not
			ctx.SetContentType("application/javascript; charset=utf-8")
			ctx.SetBodyString("/*! Socket.IO client */")
			return
		}
		if !strings.HasPrefix(path, "/socket.io/") {
			ctx.SetBodyString("backend:" + name)
			return
		}
		sid := string(ctx.QueryArgs().Peek("sid"))
		if websocket.FastHTTPIsWebSocketUpgrade(ctx) {
			if sid != "" && !b.has(sid) {
				ctx.SetStatusCode(400)
				ctx.SetBodyString("Session ID unknown")
				return
			}
			_ = up.Upgrade(ctx, func(c *websocket.Conn) {
				if sid == "" {
					c.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"`+b.newSID()+`","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`))
				}
				for {
					mt, msg, err := c.ReadMessage()
					if err != nil {
						return
					}
					if err := c.WriteMessage(mt, append([]byte(name+":"), msg...)); err != nil {
						return
					}
				}
			})
			return
		}
		if sid == "" {
			b.handshake(ctx)
			return
		}
		if !b.has(sid) {
			if ctx.IsPost() && sticky.HasClosePacket(ctx.PostBody()) {
				b.mu.Lock()
				b.closes["?unknown"]++
				b.mu.Unlock()
			}
			ctx.SetStatusCode(400)
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"code":1,"message":"Session ID unknown"}`)
			return
		}
		if ctx.IsPost() {
			if sticky.HasClosePacket(ctx.PostBody()) {
				b.mu.Lock()
				delete(b.sids, sid)
				b.closes[sid]++
				if ch := b.held[sid]; ch != nil {
					close(ch)
					delete(b.held, sid)
				}
				b.mu.Unlock()
			}
			ctx.SetContentType("text/html")
			ctx.SetBodyString("ok")
			return
		}
		ctx.SetContentType("text/plain; charset=UTF-8")
		if b.holdPolls.Load() {
			b.mu.Lock()
			ch := make(chan struct{})
			b.held[sid] = ch
			b.mu.Unlock()
			select {
			case <-ch:
				ctx.SetBodyString("1") // the session was closed: its pending poll gets the close packet
			case <-time.After(5 * time.Second):
				ctx.SetBodyString("6")
			}
			return
		}
		if b.closeGzip.Load() { // the server ends the session: a close packet, gzipped (httpCompression)
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write([]byte("1"))
			zw.Close()
			ctx.Response.Header.Set("Content-Encoding", "gzip")
			ctx.SetBody(buf.Bytes())
			return
		}
		ctx.SetBodyString("4" + name)
	}}
	go b.srv.Serve(ln)
	t.Cleanup(b.stop)
	return b
}

func (b *testBackend) stop() { b.srv.Shutdown(); b.ln.Close() }

func (b *testBackend) url() string { return "http://" + b.addr }

func (b *testBackend) newSID() string {
	sid := fmt.Sprintf("%s_%016d", b.name, b.n.Add(1))
	b.mu.Lock()
	b.sids[sid] = true
	b.mu.Unlock()
	return sid
}

func (b *testBackend) has(sid string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sids[sid]
}

func (b *testBackend) record(ctx *fasthttp.RequestCtx) {
	h := map[string]string{}
	ctx.Request.Header.VisitAll(func(k, v []byte) { h[string(k)] = string(v) })
	b.mu.Lock()
	b.lastURI = string(ctx.RequestURI())
	b.lastHdrs = h
	b.mu.Unlock()
}

func (b *testBackend) last() (string, map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastURI, b.lastHdrs
}

func (b *testBackend) handshake(ctx *fasthttp.RequestCtx) {
	sid := b.newSID()
	open := `0{"sid":"` + sid + `","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
	switch b.format {
	case "v3":
		ctx.SetBodyString(fmt.Sprintf("%d:%s2:40", len(open), open))
	case "jsonp":
		q := strings.ReplaceAll(fmt.Sprintf("%d:%s", len(open), open), `"`, `\"`)
		ctx.SetBodyString(`___eio[0]("` + q + `");`)
	case "gzip":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(open))
		zw.Close()
		ctx.Response.Header.Set("Content-Encoding", "gzip")
		ctx.SetBody(buf.Bytes())
	default:
		ctx.SetBodyString(open)
	}
	ctx.SetContentType("text/plain; charset=UTF-8")
}
