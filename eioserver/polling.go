package eioserver

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/eioproto"
)

// Engine.IO error codes (JSON body {"code":N,"message":...}).
const (
	codeTransportUnknown   = 0
	codeUnknownSID         = 1
	codeBadHandshakeMethod = 2
	codeBadRequest         = 3
	codeUnsupportedVersion = 5
)

var codeMessages = [...]string{
	codeTransportUnknown:   "Transport unknown",
	codeUnknownSID:         "Session ID unknown",
	codeBadHandshakeMethod: "Bad handshake method",
	codeBadRequest:         "Bad request",
	4:                      "Forbidden",
	codeUnsupportedVersion: "Unsupported protocol version",
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// sendError answers an Engine.IO error: JSON on HTTP requests, a raw 400 on WebSocket handshakes.
func sendError(ctx *fasthttp.RequestCtx, code int, ws bool) {
	msg := codeMessages[code]
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	if ws {
		ctx.SetConnectionClose()
		ctx.SetContentType("text/html")
		ctx.SetBodyString(msg)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"code":` + strconv.Itoa(code) + `,"message":"` + msg + `"}`)
}

// Handler serves Engine.IO requests under Options.Path and hands everything else to
// Options.Fallback.
func (srv *Server) Handler(ctx *fasthttp.RequestCtx) {
	if !bytes.HasPrefix(ctx.Path(), []byte(srv.opts.Path)) {
		srv.opts.Fallback(ctx)
		return
	}
	q := ctx.QueryArgs()
	isWS := websocket.FastHTTPIsWebSocketUpgrade(ctx)
	var t transportKind
	switch string(q.Peek("transport")) {
	case "polling":
		t = transportPolling
	case "websocket":
		t = transportWebSocket
	default:
		sendError(ctx, codeTransportUnknown, isWS)
		return
	}
	sid := q.Peek("sid")
	if len(sid) == 0 {
		srv.handshake(ctx, t, isWS)
		return
	}
	s := srv.lookup(sid)
	if s == nil {
		sendError(ctx, codeUnknownSID, isWS)
		return
	}
	if isWS {
		if t != transportWebSocket {
			sendError(ctx, codeBadRequest, true)
			return
		}
		srv.upgrade(ctx, s)
		return
	}
	if t != transportPolling || s.currentTransport() != transportPolling {
		sendError(ctx, codeBadRequest, false)
		return
	}
	switch {
	case ctx.IsGet():
		s.poll(ctx)
	case ctx.IsPost():
		s.post(ctx)
	default:
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
	}
}

// handshake opens a new session: an open packet in the GET response (polling) or as the first
// WebSocket frame.
func (srv *Server) handshake(ctx *fasthttp.RequestCtx, t transportKind, isWS bool) {
	if srv.closed.Load() {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		return
	}
	if !ctx.IsGet() {
		sendError(ctx, codeBadHandshakeMethod, isWS)
		return
	}
	if string(ctx.QueryArgs().Peek("EIO")) != "4" {
		sendError(ctx, codeUnsupportedVersion, isWS)
		return
	}
	if (t == transportWebSocket) != isWS {
		sendError(ctx, codeBadRequest, isWS)
		return
	}
	if isWS {
		srv.serveWebSocket(ctx)
		return
	}
	s := newSession(srv, transportPolling)
	srv.addSession(s)
	s.startHeartbeat()
	srv.log.Debug("session opened", sidField(s.id), zap.String("transport", "polling"))
	writePayload(ctx, []eioproto.Packet{s.openPacket(true)})
}

// writePayload answers a polling GET with pkts, encoded in a pooled buffer.
func writePayload(ctx *fasthttp.RequestCtx, pkts []eioproto.Packet) {
	bp := bufPool.Get().(*[]byte)
	*bp = eioproto.AppendPayloadV4((*bp)[:0], pkts)
	writePollHeaders(ctx)
	ctx.SetBody(*bp)
	bufPool.Put(bp)
}

func writePollHeaders(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=UTF-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
}

// overlap answers a second concurrent GET or POST: empty 400, and the session closes.
func (s *session) overlap(ctx *fasthttp.RequestCtx, what string) {
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	s.close("overlapping " + what)
}

// poll serves a long-polling GET: it answers at once with queued packets, or waits until some are
// queued (a ping comes within pingInterval). During an upgrade it answers a noop; on close, "1".
func (s *session) poll(ctx *fasthttp.RequestCtx) {
	s.mu.Lock()
	if s.getActive {
		s.mu.Unlock()
		s.overlap(ctx, "GET")
		return
	}
	s.getActive = true
	var frames []eioproto.Packet
	for {
		if len(s.queue) > 0 {
			frames, s.queue, s.spare = s.queue, s.spare, nil
			break
		}
		if s.closed {
			frames = []eioproto.Packet{closePacket}
			break
		}
		if s.upgrading || s.transport != transportPolling {
			frames = []eioproto.Packet{noopPacket}
			break
		}
		s.mu.Unlock()
		if h := s.srv.onPollWait; h != nil {
			h(s.id)
		}
		select {
		case <-s.pollWake:
		case <-s.done:
		}
		s.mu.Lock()
	}
	closing := s.closing && len(s.queue) == 0
	s.mu.Unlock()

	writePayload(ctx, frames)

	s.mu.Lock()
	s.getActive = false
	if s.spare == nil && cap(frames) <= 1024 {
		clear(frames)
		s.spare = frames[:0]
	}
	s.mu.Unlock()
	if closing {
		s.close("server close")
	}
}

// post serves a polling POST: it decodes the payload and handles each packet, then answers "ok".
func (s *session) post(ctx *fasthttp.RequestCtx) {
	s.mu.Lock()
	if s.postActive {
		s.mu.Unlock()
		s.overlap(ctx, "POST")
		return
	}
	s.postActive = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.postActive = false
		s.mu.Unlock()
	}()

	body := ctx.PostBody()
	if len(body) > s.srv.opts.MaxPayload {
		ctx.SetStatusCode(fasthttp.StatusRequestEntityTooLarge)
		s.close("payload too large")
		return
	}
	if bytes.HasPrefix(ctx.Request.Header.ContentType(), []byte("application/octet-stream")) {
		sendError(ctx, codeBadRequest, false)
		s.close("binary polling payload")
		return
	}
	s.inMu.Lock()
	var err error
	s.scratch, err = eioproto.ScanPayloadV4(body, s.scratch, s.handlePacket)
	s.inMu.Unlock()
	if err != nil {
		s.srv.log.Debug("bad polling payload", sidField(s.id), zap.Error(err))
		sendError(ctx, codeBadRequest, false)
		s.close("parse error")
		return
	}
	ctx.SetContentType("text/html")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBodyString("ok")
}
