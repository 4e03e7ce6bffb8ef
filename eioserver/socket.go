package eioserver

import (
	"bytes"
	"encoding/json"
	"sync"

	"go.uber.org/zap"

	"sioproxy/eioproto"
)

// Socket is a client connected to the Socket.IO namespace "/" over one Engine.IO session.
type Socket struct {
	id   string
	sess *session
}

// ID returns the Socket.IO socket id (sent in the CONNECT reply; not the Engine.IO sid).
func (so *Socket) ID() string { return so.id }

// SessionID returns the Engine.IO session id the socket rides on.
func (so *Socket) SessionID() string { return so.sess.id }

// Transport returns the session's current transport: "polling" or "websocket".
func (so *Socket) Transport() string { return so.sess.currentTransport().String() }

// Emit sends event with args to this socket. []byte arguments travel as binary attachments;
// json.RawMessage is sent verbatim; anything else is JSON-encoded. Emit never blocks.
func (so *Socket) Emit(event string, args ...any) {
	frames, err := encodeEvent(event, args)
	if err != nil {
		so.sess.srv.log.Warn("emit: cannot encode arguments", zap.String("event", event), zap.Error(err))
		return
	}
	so.sess.enqueueIfConnected(so, frames)
}

// Disconnect sends DISCONNECT for "/", reports "server namespace disconnect" to OnDisconnect and
// closes the Engine.IO session once the queued packets are sent.
func (so *Socket) Disconnect() {
	s := so.sess
	disconnect := eioproto.AppendSocketIO(nil, eioproto.SocketIOPacket{Type: eioproto.SIODisconnect, ID: eioproto.NoAck})
	// Detach the socket and queue DISCONNECT in one critical section: once the packet can be
	// written, a client that closes on it must not find the socket still attached (its close
	// would then be reported as "transport close").
	s.mu.Lock()
	mine := !s.closed && s.sock == so
	if mine {
		s.sock = nil
		s.queue = append(s.queue, eioproto.Packet{Type: eioproto.PacketMessage, Data: disconnect})
	}
	s.mu.Unlock()
	if mine && s.srv.opts.OnDisconnect != nil {
		s.srv.opts.OnDisconnect(so, "server namespace disconnect")
	}
	s.closeAfterFlush()
}

// ackFunc returns the ack callback for ack id (a no-op when id < 0). It sends at most once.
func (so *Socket) ackFunc(id int64) func(args ...any) {
	if id < 0 {
		return func(...any) {}
	}
	var once sync.Once
	return func(args ...any) {
		once.Do(func() {
			frames, err := encodeAck(id, args)
			if err != nil {
				so.sess.srv.log.Warn("ack: cannot encode arguments", zap.Error(err))
				return
			}
			so.sess.enqueueIfConnected(so, frames)
		})
	}
}

// onMessage handles an Engine.IO message: a Socket.IO packet or a binary attachment. s.inMu held.
func (s *session) onMessage(p eioproto.Packet) {
	if p.Binary {
		if s.pending == nil {
			return // stray attachment
		}
		s.atts = append(s.atts, bytes.Clone(p.Data))
		if len(s.atts) == s.pending.Attachments {
			pkt, atts := *s.pending, s.atts
			s.pending, s.atts = nil, nil
			s.dispatch(pkt, atts)
		}
		return
	}
	pkt, err := decodeSIO(p.Data)
	if err != nil {
		s.srv.log.Debug("bad socket.io packet", sidField(s.id), zap.Error(err))
		s.close("parse error")
		return
	}
	if pkt.Attachments > 0 {
		pkt.Data = bytes.Clone(pkt.Data)
		s.pending, s.atts = &pkt, make([][]byte, 0, pkt.Attachments)
		return
	}
	s.dispatch(pkt, nil)
}

// dispatch acts on a complete Socket.IO packet.
func (s *session) dispatch(pkt eioproto.SocketIOPacket, atts [][]byte) {
	switch pkt.Type {
	case eioproto.SIOConnect:
		if pkt.Nsp != "/" {
			refusal := eioproto.SocketIOPacket{Type: eioproto.SIOConnectError, Nsp: pkt.Nsp, ID: eioproto.NoAck, Data: []byte(`{"message":"Invalid namespace"}`)}
			s.enqueue(eioproto.Packet{Type: eioproto.PacketMessage, Data: eioproto.AppendSocketIO(nil, refusal)})
			return
		}
		s.mu.Lock()
		so := s.sock
		fresh := so == nil && !s.closed
		if fresh {
			so = &Socket{id: s.srv.newID(), sess: s}
			s.sock = so
		}
		s.mu.Unlock()
		if so == nil {
			return
		}
		s.enqueue(eioproto.Packet{Type: eioproto.PacketMessage, Data: []byte(`0{"sid":"` + so.id + `"}`)})
		if fresh && s.srv.opts.OnConnect != nil {
			s.srv.opts.OnConnect(so)
		}
	case eioproto.SIODisconnect:
		if pkt.Nsp != "/" {
			return
		}
		s.mu.Lock()
		so := s.sock
		s.sock = nil
		s.mu.Unlock()
		if so != nil && s.srv.opts.OnDisconnect != nil {
			s.srv.opts.OnDisconnect(so, "client namespace disconnect")
		}
	case eioproto.SIOEvent, eioproto.SIOBinaryEvent:
		s.mu.Lock()
		so := s.sock
		s.mu.Unlock()
		if so == nil || pkt.Nsp != "/" {
			return
		}
		var args []json.RawMessage
		if err := json.Unmarshal(pkt.Data, &args); err != nil || len(args) == 0 {
			s.srv.log.Debug("bad event payload", sidField(s.id))
			return
		}
		var name string
		if err := json.Unmarshal(args[0], &name); err != nil {
			return
		}
		if h := s.srv.handler(name); h != nil {
			h(so, &event{args: args[1:], atts: atts, ackID: pkt.ID})
		}
	}
}

// sendRawAck acks id with one JSON argument and its attachments (placeholders already numbered).
func (so *Socket) sendRawAck(id int64, arg []byte, atts [][]byte) {
	if id < 0 {
		return
	}
	body := make([]byte, 0, len(arg)+2)
	body = append(body, '[')
	body = append(body, arg...)
	body = append(body, ']')
	so.sess.enqueueIfConnected(so, packFrames(eioproto.SIOAck, id, body, atts))
}

// echo acks {"backend":Name,"data":<first argument>}; binary attachments are sent back as they came.
func (srv *Server) echo(so *Socket, ev *event) {
	data := json.RawMessage("null")
	if len(ev.args) > 0 {
		data = ev.args[0]
	}
	b := make([]byte, 0, 32+len(srv.opts.Name)+len(data))
	b = append(b, `{"backend":`...)
	b = appendJSONString(b, srv.opts.Name)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, '}')
	so.sendRawAck(ev.ackID, b, ev.atts)
}

// whoami acks {"backend":Name,"transport":"polling"|"websocket"}.
func (srv *Server) whoami(so *Socket, ev *event) {
	b := make([]byte, 0, 64)
	b = append(b, `{"backend":`...)
	b = appendJSONString(b, srv.opts.Name)
	b = append(b, `,"transport":"`...)
	b = append(b, so.Transport()...)
	b = append(b, `"}`...)
	so.sendRawAck(ev.ackID, b, nil)
}
