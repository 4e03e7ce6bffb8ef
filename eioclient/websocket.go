package eioclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"sioproxy/eioproto"
)

// wsWritePool shares write buffers between idle connections: a load generator holds many
// sessions that write rarely.
var wsWritePool = &sync.Pool{}

// wsTransport is the WebSocket transport: one packet per message, writes under a mutex, one
// reader goroutine once the session is running.
type wsTransport struct {
	c  *Conn
	ws *websocket.Conn

	wmu sync.Mutex
	buf []byte

	closeOnce sync.Once
}

var _ transport = (*wsTransport)(nil)

// dialWS opens the WebSocket of the session sid ("" for a WebSocket-only handshake).
func dialWS(ctx context.Context, c *Conn, op, sid string) (*wsTransport, error) {
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{}
			if c.opts.LocalAddr != nil {
				nd.LocalAddr = c.opts.LocalAddr
			}
			return nd.DialContext(ctx, network, addr)
		},
		TLSClientConfig:  c.opts.TLSConfig,
		HandshakeTimeout: c.opts.Timeout,
		ReadBufferSize:   2048,
		WriteBufferSize:  2048,
		WriteBufferPool:  wsWritePool,
	}
	ws, resp, err := d.DialContext(ctx, c.ep.wsURL(sid), c.opts.Header)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil && resp.StatusCode != 101 {
			return nil, &Error{Kind: KindHTTPStatus, Op: op, Err: fmt.Errorf("status %d: %w", resp.StatusCode, err)}
		}
		return nil, wrap(op, "", err)
	}
	return &wsTransport{c: c, ws: ws}, nil
}

func (w *wsTransport) name() string { return "websocket" }

// readPacket reads one packet synchronously (handshake and probe, before the read loop runs).
func (w *wsTransport) readPacket(op string, deadline time.Time) (eioproto.Packet, error) {
	_ = w.ws.SetReadDeadline(deadline)
	defer func() { _ = w.ws.SetReadDeadline(time.Time{}) }()
	mt, msg, err := w.ws.ReadMessage()
	if err != nil {
		return eioproto.Packet{}, w.readErr(op, err)
	}
	p, err := eioproto.DecodeFrame(w.c.eio, mt == websocket.BinaryMessage, msg)
	if err != nil {
		return eioproto.Packet{}, &Error{Kind: KindProtocol, Op: op, Err: err}
	}
	return p, nil
}

// readErr classifies a read error: a close frame or EOF means the peer closed.
func (w *wsTransport) readErr(op string, err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Kind: KindClosed, Op: op, Err: err}
	}
	return wrap(op, "", err)
}

// start launches the read loop.
func (w *wsTransport) start() {
	w.c.wg.Add(1)
	go w.readLoop()
}

// readLoop delivers packets until the connection ends.
func (w *wsTransport) readLoop() {
	defer w.c.wg.Done()
	for {
		mt, msg, err := w.ws.ReadMessage()
		if err != nil {
			w.c.fail(w.readErr("read", err))
			return
		}
		p, err := eioproto.DecodeFrame(w.c.eio, mt == websocket.BinaryMessage, msg)
		if err != nil {
			w.c.fail(&Error{Kind: KindProtocol, Op: "read", Err: err})
			return
		}
		w.c.handle(p)
	}
}

// send writes each packet as one message.
func (w *wsTransport) send(pkts []eioproto.Packet) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	for _, p := range pkts {
		if err := w.writeLocked(p); err != nil {
			return err
		}
	}
	return nil
}

// writeLocked writes one packet; w.wmu is held.
func (w *wsTransport) writeLocked(p eioproto.Packet) error {
	data, bin := eioproto.AppendFrame(w.buf[:0], w.c.eio, p)
	w.buf = data[:0]
	mt := websocket.TextMessage
	if bin {
		mt = websocket.BinaryMessage
	}
	_ = w.ws.SetWriteDeadline(time.Now().Add(w.c.opts.Timeout))
	if err := w.ws.WriteMessage(mt, data); err != nil {
		return wrap("write", "", err)
	}
	return nil
}

// shutdown writes last (an Engine.IO close is left out: on WebSocket the close frame says it),
// a close frame, then closes the connection.
func (w *wsTransport) shutdown(last []eioproto.Packet, timeout time.Duration) {
	w.wmu.Lock()
	for _, p := range last {
		if p.Type == eioproto.PacketClose {
			continue
		}
		if w.writeLocked(p) != nil {
			break
		}
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = w.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(timeout))
	w.wmu.Unlock()
	w.abort()
}

// abort closes the connection; the read loop ends.
func (w *wsTransport) abort() {
	w.closeOnce.Do(func() { _ = w.ws.Close() })
}
