package eioserver

import (
	"bytes"
	"net"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/eioproto"
)

// serveWebSocket opens a WebSocket-only session: the open packet is the first frame.
func (srv *Server) serveWebSocket(ctx *fasthttp.RequestCtx) {
	srv.conns.Add(1)
	err := srv.upgrader.Upgrade(ctx, func(conn *websocket.Conn) {
		defer srv.conns.Done()
		s := newSession(srv, transportWebSocket)
		s.queue = append(s.queue, s.openPacket(false))
		notify(s.wsWake)
		srv.addSession(s)
		s.startHeartbeat()
		srv.log.Debug("session opened", sidField(s.id), zap.String("transport", "websocket"))
		if srv.closed.Load() { // Close ran between the handshake check and now
			s.close("server shutting down")
		}
		s.runWebSocket(conn)
	})
	if err != nil {
		srv.conns.Done()
	}
}

// upgrade serves the WebSocket probe of a polling session: 2probe -> 3probe, a noop flushes the
// pending GET, then "5" switches the session to the WebSocket. Without "5" in UpgradeTimeout the
// probe is closed and the session stays on polling. A WebSocket for a session that is already
// upgrading or upgraded gets its 101 and is closed at once.
func (srv *Server) upgrade(ctx *fasthttp.RequestCtx, s *session) {
	srv.conns.Add(1)
	err := srv.upgrader.Upgrade(ctx, func(conn *websocket.Conn) {
		defer srv.conns.Done()
		s.mu.Lock()
		ok := !s.closed && s.transport == transportPolling && s.probe == nil
		if ok {
			s.probe = conn
		}
		s.mu.Unlock()
		if !ok {
			closeConn(conn)
			return
		}
		if s.probeWebSocket(conn) {
			s.runWebSocket(conn)
		}
	})
	if err != nil {
		srv.conns.Done()
	}
}

// probeWebSocket runs the upgrade exchange; true when the session now uses conn.
func (s *session) probeWebSocket(conn *websocket.Conn) bool {
	conn.SetReadLimit(int64(s.srv.opts.MaxPayload))
	// The timeout closes the probe only while this handler runs: once it returned, fasthttp may
	// have released the hijacked connection.
	var mu sync.Mutex
	running := true
	timer := time.AfterFunc(s.srv.opts.UpgradeTimeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if running {
			closeConn(conn)
		}
	})
	defer func() {
		timer.Stop()
		mu.Lock()
		running = false
		mu.Unlock()
	}()
	fail := func(why string) bool {
		s.mu.Lock()
		if s.probe == conn {
			s.probe = nil
			s.upgrading = false
		}
		s.mu.Unlock()
		closeConn(conn)
		s.srv.log.Debug("upgrade failed", sidField(s.id), zap.String("reason", why))
		return false
	}
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			return fail(err.Error())
		}
		switch {
		case typ == websocket.TextMessage && string(msg) == "2probe":
			if err := conn.WriteMessage(websocket.TextMessage, []byte("3probe")); err != nil {
				return fail(err.Error())
			}
			s.mu.Lock()
			s.upgrading = !s.closed
			s.mu.Unlock()
			notify(s.pollWake) // a pending GET answers a noop
		case typ == websocket.TextMessage && string(msg) == "5":
			s.mu.Lock()
			ok := s.upgrading && !s.closed && s.probe == conn
			if ok {
				s.transport = transportWebSocket
				s.upgrading = false
				s.probe = nil
			}
			s.mu.Unlock()
			if !ok {
				return fail("upgrade packet before probe")
			}
			if !timer.Stop() {
				return fail("upgrade timeout") // the timer already closed conn
			}
			notify(s.pollWake)
			notify(s.wsWake)
			s.srv.log.Debug("session upgraded", sidField(s.id))
			return true
		default:
			return fail("unexpected packet during upgrade")
		}
	}
}

// runWebSocket serves conn as the session's transport until either ends: this goroutine reads,
// one writer goroutine drains the queue.
func (s *session) runWebSocket(conn *websocket.Conn) {
	conn.SetReadLimit(int64(s.srv.opts.MaxPayload))
	writerDone := make(chan struct{})
	go s.writeLoop(conn, writerDone)
	var buf bytes.Buffer
	reason := "transport close"
	for {
		typ, r, err := conn.NextReader()
		if err != nil {
			break
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			reason = "transport error"
			break
		}
		p, err := eioproto.DecodeFrame(4, typ == websocket.BinaryMessage, buf.Bytes())
		if err != nil {
			reason = "parse error"
			break
		}
		s.inMu.Lock()
		alive := s.handlePacket(p)
		s.inMu.Unlock()
		if !alive {
			break
		}
	}
	s.close(reason)
	<-writerDone
	closeConn(conn)
}

// writeLoop writes queued frames to conn until the session closes; then it flushes what is left,
// sends a close frame and closes conn (which ends the reader).
func (s *session) writeLoop(conn *websocket.Conn, done chan<- struct{}) {
	defer close(done)
	var batch []eioproto.Packet
	writeTimeout := s.srv.opts.PingInterval + s.srv.opts.PingTimeout
	for {
		select {
		case <-s.wsWake:
		case <-s.done:
		}
		s.mu.Lock()
		batch, s.queue = s.queue, batch[:0]
		closed, closing := s.closed, s.closing
		s.mu.Unlock()
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := writeFrames(conn, batch); err != nil {
			closeConn(conn)
			s.close("transport error")
			return
		}
		clear(batch)
		if closing && !closed {
			s.close("server close")
			continue
		}
		if closed {
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			closeConn(conn)
			return
		}
	}
}

// writeFrames writes pkts to conn, one WebSocket message each, encoded in a pooled buffer.
func writeFrames(conn *websocket.Conn, pkts []eioproto.Packet) error {
	if len(pkts) == 0 {
		return nil
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	for _, p := range pkts {
		var binary bool
		*bp, binary = eioproto.AppendFrame((*bp)[:0], 4, p)
		typ := websocket.TextMessage
		if binary {
			typ = websocket.BinaryMessage
		}
		if err := conn.WriteMessage(typ, *bp); err != nil {
			return err
		}
	}
	return nil
}

// closeConn closes the TCP connection under a WebSocket. Closing the hijacked net.Conn fasthttp
// hands over is a no-op unless the server keeps hijacked connections, so reach the real one.
func closeConn(c *websocket.Conn) {
	nc := c.NetConn()
	if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
		nc = u.UnsafeConn()
	}
	_ = nc.Close()
}
