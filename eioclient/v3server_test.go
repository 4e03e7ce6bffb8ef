package eioclient

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"sioproxy/eioproto"
)

// v3Server is a tiny Engine.IO v3 + Socket.IO protocol 4 server (the socket.io 2.x behaviour:
// implicit CONNECT, client pings) for end-to-end tests of the v3 code paths. It acks every event
// with its arguments, greets each socket with a binary "hello" event, and answers polls with
// XHR2 binary framing when binaryFraming is set and a binary packet is queued.
type v3Server struct {
	pingInterval  time.Duration
	binaryFraming bool
	pings         chan struct{} // one per client ping (not probes), dropped when full
	mute          atomic.Bool   // stop answering pings
	up            websocket.Upgrader

	mu       sync.Mutex
	n        int
	sessions map[string]*v3Session
}

type v3Session struct {
	srv *v3Server
	id  string

	mu    sync.Mutex
	queue []eioproto.Packet
	ws    *websocket.Conn // set once the session is on WebSocket
	wake  chan struct{}

	hmu     sync.Mutex // handle: POSTs may come on different connections
	partial *eioproto.SocketIOPacket
	atts    [][]byte
}

func newV3Server(t *testing.T, binaryFraming bool) (*v3Server, string) {
	s := &v3Server{
		pingInterval:  30 * time.Millisecond,
		binaryFraming: binaryFraming,
		pings:         make(chan struct{}, 100),
		sessions:      make(map[string]*v3Session),
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

func (s *v3Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("EIO") != "3" {
		http.Error(w, `{"code":5,"message":"Unsupported protocol version"}`, http.StatusBadRequest)
		return
	}
	sid := q.Get("sid")
	ws := q.Get("transport") == "websocket"
	if sid == "" {
		sess := s.newSession()
		if ws {
			conn, err := s.up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			sess.mu.Lock()
			sess.ws = conn
			sess.mu.Unlock()
			sess.greet()
			sess.readWS(conn)
			return
		}
		sess.greet()
		sess.poll(w)
		return
	}
	s.mu.Lock()
	sess := s.sessions[sid]
	s.mu.Unlock()
	if sess == nil {
		http.Error(w, `{"code":1,"message":"Session ID unknown"}`, http.StatusBadRequest)
		return
	}
	switch {
	case ws:
		conn, err := s.up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		sess.upgrade(conn)
	case r.Method == http.MethodGet:
		sess.poll(w)
	default:
		body, _ := io.ReadAll(r.Body)
		pkts, err := eioproto.DecodePayloadV3(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, p := range pkts {
			sess.handle(p)
		}
		_, _ = io.WriteString(w, "ok")
	}
}

func (s *v3Server) newSession() *v3Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	sess := &v3Session{srv: s, id: fmt.Sprintf("v3sid%d", s.n), wake: make(chan struct{}, 1)}
	s.sessions[sess.id] = sess
	return sess
}

// greet queues the open packet, the implicit CONNECT and a binary event.
func (ss *v3Session) greet() {
	open := fmt.Sprintf(`{"sid":%q,"upgrades":["websocket"],"pingInterval":%d,"pingTimeout":%d}`,
		ss.id, ss.srv.pingInterval.Milliseconds(), 5*ss.srv.pingInterval.Milliseconds())
	ss.send(txt(eioproto.PacketOpen, open), txt(eioproto.PacketMessage, "0"),
		txt(eioproto.PacketMessage, `51-["hello","v3",{"_placeholder":true,"num":0}]`), bin(eioproto.PacketMessage, 7, 7))
}

// send queues packets for the next poll, or writes them when on WebSocket.
func (ss *v3Session) send(pkts ...eioproto.Packet) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ws != nil {
		for _, p := range pkts {
			data, isBin := eioproto.AppendFrame(nil, 3, p)
			mt := websocket.TextMessage
			if isBin {
				mt = websocket.BinaryMessage
			}
			_ = ss.ws.WriteMessage(mt, data)
		}
		return
	}
	ss.queue = append(ss.queue, pkts...)
	notify(ss.wake)
}

// poll answers one GET with the queued packets, waiting up to two ping intervals for some.
func (ss *v3Session) poll(w http.ResponseWriter) {
	t := time.NewTimer(2 * ss.srv.pingInterval)
	defer t.Stop()
	for {
		ss.mu.Lock()
		q := ss.queue
		ss.queue = nil
		ss.mu.Unlock()
		if len(q) > 0 {
			hasBin := false
			for _, p := range q {
				hasBin = hasBin || p.Binary
			}
			if hasBin && ss.srv.binaryFraming {
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = w.Write(eioproto.AppendBinaryPayloadV3(nil, q))
			} else {
				w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
				_, _ = w.Write(eioproto.AppendPayloadV3(nil, q))
			}
			return
		}
		select {
		case <-ss.wake:
		case <-t.C:
			ss.send(txt(eioproto.PacketNoop, ""))
		}
	}
}

// upgrade runs the probe exchange on conn, then moves the session onto it.
func (ss *v3Session) upgrade(conn *websocket.Conn) {
	defer conn.Close()
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		p, err := eioproto.DecodeFrame(3, mt == websocket.BinaryMessage, msg)
		if err != nil {
			return
		}
		switch {
		case p.Type == eioproto.PacketPing && string(p.Data) == "probe":
			_ = conn.WriteMessage(websocket.TextMessage, []byte("3probe"))
			ss.send(txt(eioproto.PacketNoop, "")) // end the pending poll
		case p.Type == eioproto.PacketUpgrade:
			ss.mu.Lock()
			q := ss.queue
			ss.queue = nil
			ss.ws = conn
			ss.mu.Unlock()
			ss.send(q...)
			ss.readWS(conn)
			return
		default:
			return
		}
	}
}

// readWS handles packets until the connection ends.
func (ss *v3Session) readWS(conn *websocket.Conn) {
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		p, err := eioproto.DecodeFrame(3, mt == websocket.BinaryMessage, msg)
		if err != nil {
			return
		}
		ss.handle(p)
	}
}

// handle answers pings and acks events with their own arguments.
func (ss *v3Session) handle(p eioproto.Packet) {
	ss.hmu.Lock()
	defer ss.hmu.Unlock()
	switch p.Type {
	case eioproto.PacketPing:
		select {
		case ss.srv.pings <- struct{}{}:
		default:
		}
		if !ss.srv.mute.Load() {
			ss.send(eioproto.Packet{Type: eioproto.PacketPong, Data: p.Data})
		}
	case eioproto.PacketMessage:
		if p.Binary {
			if ss.partial == nil {
				return
			}
			ss.atts = append(ss.atts, p.Data)
			if len(ss.atts) < ss.partial.Attachments {
				return
			}
			sp, atts := *ss.partial, ss.atts
			ss.partial, ss.atts = nil, nil
			ss.ack(sp, atts)
			return
		}
		sp, err := eioproto.DecodeSocketIO(p.Data)
		if err != nil {
			return
		}
		if sp.Attachments > 0 {
			ss.partial = &sp
			return
		}
		ss.ack(sp, nil)
	}
}

// ack echoes an event's arguments (name removed) as its ack.
func (ss *v3Session) ack(sp eioproto.SocketIOPacket, atts [][]byte) {
	if (sp.Type != eioproto.SIOEvent && sp.Type != eioproto.SIOBinaryEvent) || sp.ID == eioproto.NoAck {
		return
	}
	data := sp.Data
	// Drop the event name: the array starts with `["name"`.
	end := 1
	for inStr, esc := false, false; end < len(data); end++ {
		c := data[end]
		if esc {
			esc = false
			continue
		}
		if c == '\\' {
			esc = true
		} else if c == '"' {
			if inStr {
				end++
				break
			}
			inStr = true
		}
	}
	rest := data[end:]
	if len(rest) > 0 && rest[0] == ',' {
		rest = rest[1:]
	}
	args := "[" + string(rest)
	typ := "3"
	if len(atts) > 0 {
		typ = "6" + strconv.Itoa(len(atts)) + "-"
	}
	pkts := []eioproto.Packet{txt(eioproto.PacketMessage, typ+strconv.FormatInt(sp.ID, 10)+args)}
	for _, a := range atts {
		pkts = append(pkts, eioproto.Packet{Type: eioproto.PacketMessage, Data: a, Binary: true})
	}
	ss.send(pkts...)
}

func txt(t eioproto.PacketType, s string) eioproto.Packet {
	return eioproto.Packet{Type: t, Data: []byte(s)}
}

func bin(t eioproto.PacketType, b ...byte) eioproto.Packet {
	return eioproto.Packet{Type: t, Data: append([]byte{}, b...), Binary: true}
}
