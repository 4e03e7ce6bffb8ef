package eioserver

import (
	"bytes"
	"encoding/json"
	"sync"

	"go.uber.org/zap"
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
	s.enqueueIfConnected(so, []frame{{data: []byte{pktMessage, sioDisconnect}}})
	s.mu.Lock()
	mine := s.sock == so
	if mine {
		s.sock = nil
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
func (s *session) onMessage(p inPacket) {
	if p.binary {
		if s.pending == nil {
			return // stray attachment
		}
		s.atts = append(s.atts, bytes.Clone(p.data))
		if len(s.atts) == s.pending.attachments {
			pkt, atts := *s.pending, s.atts
			s.pending, s.atts = nil, nil
			s.dispatch(pkt, atts)
		}
		return
	}
	pkt, err := decodeSIO(p.data)
	if err != nil {
		s.srv.log.Debug("bad socket.io packet", zap.String("sid", s.id), zap.Error(err))
		s.close("parse error")
		return
	}
	if pkt.attachments > 0 {
		pkt.data = bytes.Clone(pkt.data)
		s.pending, s.atts = &pkt, make([][]byte, 0, pkt.attachments)
		return
	}
	s.dispatch(pkt, nil)
}

// dispatch acts on a complete Socket.IO packet.
func (s *session) dispatch(pkt sioPacket, atts [][]byte) {
	switch pkt.typ {
	case sioConnect:
		if pkt.nsp != "/" {
			s.enqueue(frame{data: append([]byte{pktMessage, sioConnectError}, pkt.nsp+`,{"message":"Invalid namespace"}`...)})
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
		s.enqueue(textFrame(pktMessage, `0{"sid":"`+so.id+`"}`))
		if fresh && s.srv.opts.OnConnect != nil {
			s.srv.opts.OnConnect(so)
		}
	case sioDisconnect:
		if pkt.nsp != "/" {
			return
		}
		s.mu.Lock()
		so := s.sock
		s.sock = nil
		s.mu.Unlock()
		if so != nil && s.srv.opts.OnDisconnect != nil {
			s.srv.opts.OnDisconnect(so, "client namespace disconnect")
		}
	case sioEvent, sioBinaryEvent:
		s.mu.Lock()
		so := s.sock
		s.mu.Unlock()
		if so == nil || pkt.nsp != "/" {
			return
		}
		var args []json.RawMessage
		if err := json.Unmarshal(pkt.data, &args); err != nil || len(args) == 0 {
			s.srv.log.Debug("bad event payload", zap.String("sid", s.id))
			return
		}
		var name string
		if err := json.Unmarshal(args[0], &name); err != nil {
			return
		}
		if h := s.srv.handler(name); h != nil {
			h(so, &event{args: args[1:], atts: atts, ackID: pkt.id})
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
	so.sess.enqueueIfConnected(so, packFrames(sioAck, id, body, atts))
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
