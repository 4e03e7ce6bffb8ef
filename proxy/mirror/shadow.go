package mirror

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/eioproto"
	"sioproxy/internal/backendtls"
	"sioproxy/proxy"
	"sioproxy/sticky"
)

// Shadow timeouts.
const (
	shadowWriteTimeout = 5 * time.Second
	shadowReadSlack    = 10 * time.Second // added to pingInterval+pingTimeout before the shadow counts as dead
	maxShadowMessage   = 16 << 20
	shadowPlaceTries   = 2
)

// ErrNoTarget is returned when no shadow backend can take a session.
var ErrNoTarget = errors.New("mirror: no shadow backend available")

// shadowConn is the shadow Engine.IO client of one session: a WebSocket-only Engine.IO session on a
// target backend. The session goroutine writes replayed packets; readLoop reads and discards what
// the target sends, answering its heartbeats and handing acks and events to the comparison.
type shadowConn struct {
	s       *session
	conn    *websocket.Conn
	be      *balancer.Backend
	claim   balancer.Claim // the shadow session's count on its target, released on close
	eio     int
	timeout time.Duration // read deadline: no frame for this long means the target is gone

	wmu       sync.Mutex
	wbuf      []byte
	failed    atomic.Bool // a read or write failed: replay stops
	closing   atomic.Bool // closed on purpose
	done      chan struct{}
	closeOnce sync.Once

	bin binState // owned by readLoop
}

// dialShadow places the session on a target and makes the shadow's own Engine.IO handshake there.
func (m *Mirror) dialShadow(s *session) (*shadowConn, error) {
	var tried [shadowPlaceTries]*balancer.Backend
	pick := balancer.Pick{}
	var lastErr error = ErrNoTarget
	for i := 0; i < shadowPlaceTries; i++ {
		pick.Exclude, pick.Now = tried[:i], m.now().UnixNano()
		be := m.targets.Place(&pick)
		if be == nil {
			break
		}
		tried[i] = be
		sh, err := m.connect(s, be)
		if err == nil {
			m.targets.ReportSuccess(be)
			return sh, nil
		}
		var he handshakeError
		if !errors.As(err, &he) {
			m.targets.ReportFailure(be) // unreachable, not a refusal
		}
		lastErr = err
	}
	return nil, lastErr
}

// handshakeError is a target that answered but refused or garbled the handshake.
type handshakeError struct{ msg string }

func (e handshakeError) Error() string { return "mirror: shadow handshake: " + e.msg }

func (m *Mirror) connect(s *session, be *balancer.Backend) (*shadowConn, error) {
	scheme := "ws"
	if be.TLS {
		scheme = "wss"
	}
	path := s.path
	if path == "" {
		path = "/socket.io/"
	}
	url := fmt.Sprintf("%s://%s%s?%sEIO=%d&transport=websocket", scheme, be.Addr, path, s.query, m.targetEIO)
	var tlsConf *tls.Config
	if be.TLS {
		var err error
		if tlsConf, err = backendtls.Config(be.Spec); err != nil {
			return nil, err
		}
	}
	d := websocket.Dialer{
		TLSClientConfig:  tlsConf,
		HandshakeTimeout: m.dialTimeout,
		NetDial:          func(network, addr string) (net.Conn, error) { return net.DialTimeout(network, addr, m.dialTimeout) },
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
	}
	conn, resp, err := d.Dial(url, s.header)
	if err != nil {
		if resp != nil {
			return nil, handshakeError{fmt.Sprintf("%s answered %d", be.ID, resp.StatusCode)}
		}
		return nil, err
	}
	conn.SetReadLimit(maxShadowMessage)
	conn.SetReadDeadline(time.Now().Add(m.dialTimeout))
	op, msg, err := conn.ReadMessage()
	if err != nil {
		conn.Close()
		return nil, err
	}
	open, err := sticky.ParseHandshake(msg) // the open packet: "0{...}", a non-empty sid
	if op != websocket.TextMessage || err != nil {
		conn.Close()
		return nil, handshakeError{fmt.Sprintf("%s sent no open packet: %.60q", be.ID, msg)}
	}
	timeout := open.PingInterval + open.PingTimeout + shadowReadSlack
	sh := &shadowConn{s: s, conn: conn, be: be, claim: be.Claim(), eio: m.targetEIO, timeout: timeout, done: make(chan struct{})}
	if m.targetEIO == 3 && open.PingInterval > 0 {
		go sh.pinger(open.PingInterval)
	}
	return sh, nil
}

// write sends one packet to the target.
func (sh *shadowConn) write(p eioproto.Packet) error {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	if sh.failed.Load() {
		return net.ErrClosed
	}
	var binary bool
	sh.wbuf, binary = eioproto.AppendFrame(sh.wbuf[:0], sh.eio, p)
	typ := websocket.TextMessage
	if binary {
		typ = websocket.BinaryMessage
	}
	sh.conn.SetWriteDeadline(time.Now().Add(shadowWriteTimeout))
	err := sh.conn.WriteMessage(typ, sh.wbuf)
	if cap(sh.wbuf) > 64<<10 {
		sh.wbuf = nil
	}
	if err != nil {
		sh.fail(err)
	}
	return err
}

// fail stops the shadow after an error it did not ask for.
func (sh *shadowConn) fail(err error) {
	if sh.closing.Load() || sh.failed.Swap(true) {
		return
	}
	sh.s.m.stats.shadowFailures.Add(1)
	sh.s.m.log.Debug("shadow failed", zap.String("sid_hash", proxy.SIDHash(sh.s.sid)), zap.String("target", sh.be.ID), zap.Error(err))
	sh.conn.Close()
}

// readLoop reads the target's packets until the connection ends.
func (sh *shadowConn) readLoop() {
	defer close(sh.done)
	defer sh.s.markDead()
	for {
		sh.conn.SetReadDeadline(time.Now().Add(sh.timeout))
		op, msg, err := sh.conn.ReadMessage()
		if err != nil {
			sh.fail(err)
			return
		}
		p, err := eioproto.DecodeFrame(sh.eio, op == websocket.BinaryMessage, msg)
		if err != nil {
			continue
		}
		switch p.Type {
		case eioproto.PacketPing:
			if sh.eio == 4 {
				sh.write(eioproto.Packet{Type: eioproto.PacketPong, Data: p.Data})
			}
		case eioproto.PacketClose:
			sh.fail(errors.New("target closed the session"))
			return
		case eioproto.PacketMessage:
			sh.message(p)
		}
	}
}

// message handles a packet from the target: acks to the comparison, events counted.
func (sh *shadowConn) message(p eioproto.Packet) {
	at := sh.s.m.now().UnixNano()
	if !p.Binary && len(p.Data) > 0 && (p.Data[0] == '0' || p.Data[0] == '4') {
		if sp, err := eioproto.DecodeSocketIO(p.Data); err == nil {
			select {
			case sh.s.connAck <- sp.Nsp:
			default:
			}
		}
		return
	}
	if ack, key, payload := sh.bin.feed(p); ack {
		sh.s.answer(sideShadow, key, payload, at)
	} else if name, ok := eventOf(p); ok {
		sh.s.m.stats.event(sideShadow, name)
	}
}

// pinger sends Engine.IO 3 heartbeats (the client pings in v3).
func (sh *shadowConn) pinger(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-sh.done:
			return
		case <-t.C:
			if sh.write(eioproto.Packet{Type: eioproto.PacketPing}) != nil {
				return
			}
		}
	}
}

// close ends the shadow session (the primary ended) and waits for readLoop.
func (sh *shadowConn) close() {
	sh.closeOnce.Do(func() {
		sh.closing.Store(true)
		sh.wmu.Lock()
		if !sh.failed.Load() {
			sh.conn.SetWriteDeadline(time.Now().Add(time.Second))
			sh.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		}
		sh.wmu.Unlock()
		sh.conn.Close()
		<-sh.done
		sh.claim.Release()
	})
}
