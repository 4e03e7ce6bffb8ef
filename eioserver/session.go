package eioserver

import (
	"strconv"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	"go.uber.org/zap"

	"sioproxy/eioproto"
)

// transportKind is the active transport of a session.
type transportKind uint8

const (
	transportPolling transportKind = iota + 1
	transportWebSocket
)

func (t transportKind) String() string {
	if t == transportWebSocket {
		return "websocket"
	}
	return "polling"
}

// session is one Engine.IO session. Outgoing packets are queued; the pending polling GET or the
// WebSocket writer drains the queue. Incoming packets are handled under inMu, so Socket.IO
// handlers of one session never run concurrently.
type session struct {
	srv *Server
	id  string

	mu         sync.Mutex
	transport  transportKind
	queue      []eioproto.Packet // outgoing; Data is immutable once queued (a broadcast shares it)
	spare      []eioproto.Packet // recycled queue backing array (polling)
	getActive  bool
	postActive bool
	upgrading  bool            // 2probe seen, waiting for 5
	probe      *websocket.Conn // the WebSocket being probed, if any
	closing    bool            // a close packet is queued; close once it is sent
	closed     bool
	hbGen      uint64 // invalidates stale heartbeat callbacks
	hbTimer    stopper
	awaitPong  bool
	sock       *Socket // the socket on "/" once connected

	pollWake chan struct{} // wakes a pending GET
	wsWake   chan struct{} // wakes the WebSocket writer
	done     chan struct{} // closed when the session closes

	inMu    sync.Mutex               // serialises incoming packet handling
	pending *eioproto.SocketIOPacket // binary packet waiting for attachments
	atts    [][]byte
	scratch []byte // base64 decoding buffer
}

func newSession(srv *Server, t transportKind) *session {
	return &session{
		srv:       srv,
		id:        srv.newID(),
		transport: t,
		pollWake:  make(chan struct{}, 1),
		wsWake:    make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

// Packets the server sends as they are.
var (
	pingPacket  = eioproto.Packet{Type: eioproto.PacketPing}
	noopPacket  = eioproto.Packet{Type: eioproto.PacketNoop}
	closePacket = eioproto.Packet{Type: eioproto.PacketClose}
)

// openPacket returns the Engine.IO open packet for this session.
func (s *session) openPacket(upgrades bool) eioproto.Packet {
	o := s.srv.opts
	b := make([]byte, 0, 160)
	b = append(b, `{"sid":"`...)
	b = append(b, s.id...)
	if upgrades {
		b = append(b, `","upgrades":["websocket"],"pingInterval":`...)
	} else {
		b = append(b, `","upgrades":[],"pingInterval":`...)
	}
	b = strconv.AppendInt(b, o.PingInterval.Milliseconds(), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, o.PingTimeout.Milliseconds(), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, int64(o.MaxPayload), 10)
	b = append(b, '}')
	return eioproto.Packet{Type: eioproto.PacketOpen, Data: b}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// enqueue queues frames, contiguously, unless the session is closed.
func (s *session) enqueue(frames ...eioproto.Packet) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, frames...)
	s.mu.Unlock()
	notify(s.pollWake)
	notify(s.wsWake)
}

// enqueueIfConnected queues frames if the session's socket on "/" is so (any socket if so is nil).
func (s *session) enqueueIfConnected(so *Socket, frames []eioproto.Packet) {
	s.mu.Lock()
	if s.closed || s.sock == nil || (so != nil && s.sock != so) {
		s.mu.Unlock()
		return
	}
	s.queue = append(s.queue, frames...)
	s.mu.Unlock()
	notify(s.pollWake)
	notify(s.wsWake)
}

// currentTransport returns the active transport.
func (s *session) currentTransport() transportKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// startHeartbeat arms the first ping. Call once, after the open packet is queued.
func (s *session) startHeartbeat() {
	s.mu.Lock()
	s.schedule(s.srv.opts.PingInterval, false)
	s.mu.Unlock()
}

// schedule (re)arms the heartbeat timer; s.mu must be held.
func (s *session) schedule(d time.Duration, awaitPong bool) {
	if s.hbTimer != nil {
		s.hbTimer.Stop()
	}
	s.hbGen++
	gen := s.hbGen
	s.awaitPong = awaitPong
	s.hbTimer = s.srv.afterFunc(d, func() { s.onHeartbeat(gen) })
}

// onHeartbeat sends a ping at the end of pingInterval, or closes the session when the pong did
// not come within pingTimeout.
func (s *session) onHeartbeat(gen uint64) {
	s.mu.Lock()
	if s.closed || gen != s.hbGen {
		s.mu.Unlock()
		return
	}
	if s.awaitPong {
		s.mu.Unlock()
		s.close("ping timeout")
		return
	}
	s.schedule(s.srv.opts.PingTimeout, true)
	s.queue = append(s.queue, pingPacket)
	s.mu.Unlock()
	notify(s.pollWake)
	notify(s.wsWake)
}

// onPong re-arms the ping after a pong.
func (s *session) onPong() {
	s.mu.Lock()
	if !s.closed && s.awaitPong {
		s.schedule(s.srv.opts.PingInterval, false)
	}
	s.mu.Unlock()
}

// close ends the session once: it stops the heartbeat, wakes pending requests and the writer,
// closes a probing WebSocket, forgets the session and disconnects its socket.
func (s *session) close(reason string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.hbGen++
	if s.hbTimer != nil {
		s.hbTimer.Stop()
	}
	probe := s.probe
	s.probe = nil
	sock := s.sock
	s.sock = nil
	t := s.transport
	s.mu.Unlock()
	close(s.done)
	if probe != nil {
		closeConn(probe)
	}
	s.srv.removeSession(s)
	s.srv.log.Debug("session closed", sidField(s.id), zap.Stringer("transport", t), zap.String("reason", reason))
	if sock != nil && s.srv.opts.OnDisconnect != nil {
		s.srv.opts.OnDisconnect(sock, reason)
	}
	if s.srv.onClose != nil {
		s.srv.onClose(s.id, reason)
	}
}

// closeAfterFlush queues a close packet and closes the session once the queue is sent.
func (s *session) closeAfterFlush() {
	s.mu.Lock()
	if s.closed || s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.queue = append(s.queue, closePacket)
	s.mu.Unlock()
	notify(s.pollWake)
	notify(s.wsWake)
}

// handlePacket processes one incoming Engine.IO packet; s.inMu must be held. It returns false when
// the session ended.
func (s *session) handlePacket(p eioproto.Packet) bool {
	switch p.Type {
	case eioproto.PacketClose:
		s.close("transport close")
		return false
	case eioproto.PacketPong:
		s.onPong()
	case eioproto.PacketMessage:
		s.onMessage(p)
	}
	return true
}
