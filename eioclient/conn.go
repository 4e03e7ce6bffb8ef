package eioclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"sioproxy/eioproto"
)

// transport is the Engine.IO channel a Conn currently sends on.
type transport interface {
	name() string
	// send writes or queues pkts; it must not block on the network for long.
	send(pkts []eioproto.Packet) error
	// shutdown sends last (best effort, bounded by timeout) then releases the transport.
	shutdown(last []eioproto.Packet, timeout time.Duration)
	// abort releases the transport at once; blocked I/O returns.
	abort()
}

// openInfo is the JSON of the Engine.IO open packet.
type openInfo struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// AckFunc receives the arguments of an ack, or the error that ended the wait. It runs on the
// Conn's reader goroutine and must not block.
type AckFunc func(args []json.RawMessage, attachments [][]byte, err error)

// Conn is one Engine.IO session with one connected Socket.IO namespace.
type Conn struct {
	opts Options
	ep   endpoint
	eio  int
	open openInfo

	sioSID string

	trMu sync.RWMutex
	tr   transport

	ackMu   sync.Mutex
	acks    map[int64]AckFunc
	nextAck int64

	onEvent   atomic.Pointer[func(*Event)]
	connectCh chan error // first CONNECT answer

	// reader state: touched only by the one goroutine delivering packets at a time.
	partial     *eioproto.SocketIOPacket
	partialAtts [][]byte
	connected   bool // the CONNECT answer came

	lastRecv  atomic.Int64 // unix nanos of the last packet received
	deadTimer *time.Timer
	pingTimer *time.Timer

	wg        sync.WaitGroup
	done      chan struct{}
	failOnce  sync.Once
	err       error // set before done is closed
	closeOnce sync.Once
	closing   atomic.Bool // Close is running: the server's answers to it are no errors
}

// Dial opens an Engine.IO session with opts.Mode, connects the Socket.IO namespace and, in
// Upgrade mode, completes the upgrade to WebSocket before returning. The whole of it is bounded
// by ctx and opts.Timeout. Errors are *Error values.
func Dial(ctx context.Context, opts Options) (*Conn, error) {
	ep, err := opts.normalize()
	if err != nil {
		return nil, &Error{Kind: KindOther, Op: "dial", Err: err}
	}
	c := &Conn{
		opts:      opts,
		ep:        ep,
		eio:       opts.EIO,
		acks:      make(map[int64]AckFunc),
		connectCh: make(chan error, 1),
		done:      make(chan struct{}),
	}
	if opts.OnEvent != nil {
		c.onEvent.Store(&opts.OnEvent)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		c.fail(&Error{Kind: KindTimeout, Op: "dial", Err: ctx.Err()})
	})
	err = c.dial(ctx)
	stop()
	if err == nil {
		select {
		case <-c.done:
			err = c.err
		default:
			return c, nil
		}
	}
	c.fail(err)
	c.wg.Wait()
	return nil, c.firstErr(err)
}

// firstErr prefers the error that ended the Conn (a timeout, a server close) over err, which is
// often a consequence of it.
func (c *Conn) firstErr(err error) error {
	select {
	case <-c.done:
		return c.err
	default:
		return err
	}
}

// parseOpen validates the first packet of a session and stores its parameters.
func (c *Conn) parseOpen(op string, pkts []eioproto.Packet) ([]eioproto.Packet, error) {
	if len(pkts) == 0 || pkts[0].Type != eioproto.PacketOpen || pkts[0].Binary {
		return nil, &Error{Kind: KindHandshake, Op: op, Err: errors.New("first packet is not open")}
	}
	if err := json.Unmarshal(pkts[0].Data, &c.open); err != nil {
		return nil, &Error{Kind: KindHandshake, Op: op, Err: err}
	}
	if c.open.SID == "" || c.open.PingInterval <= 0 || c.open.PingTimeout <= 0 {
		return nil, &Error{Kind: KindHandshake, Op: op, Err: fmt.Errorf("bad open packet %q", pkts[0].Data)}
	}
	return pkts[1:], nil
}

// startHeartbeat arms the liveness check (and, for v3, the client's pings).
func (c *Conn) startHeartbeat() {
	interval := time.Duration(c.open.PingInterval) * time.Millisecond
	limit := interval + time.Duration(c.open.PingTimeout)*time.Millisecond
	c.lastRecv.Store(time.Now().UnixNano())
	c.deadTimer = time.AfterFunc(limit, func() { c.checkAlive(limit) })
	if c.eio == 3 {
		c.pingTimer = time.AfterFunc(interval, func() {
			if c.send(eioproto.Packet{Type: eioproto.PacketPing}) == nil {
				c.pingTimer.Reset(interval)
			}
		})
	}
}

// checkAlive fails the Conn when nothing came for limit, else re-arms itself.
func (c *Conn) checkAlive(limit time.Duration) {
	idle := time.Since(time.Unix(0, c.lastRecv.Load()))
	if idle >= limit {
		c.fail(&Error{Kind: KindPing, Op: "heartbeat", Err: fmt.Errorf("nothing received for %v", idle.Round(time.Millisecond))})
		return
	}
	select {
	case <-c.done:
	default:
		c.deadTimer.Reset(limit - idle)
	}
}

// send writes pkts on the current transport.
func (c *Conn) send(pkts ...eioproto.Packet) error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	c.trMu.RLock()
	err := c.tr.send(pkts)
	c.trMu.RUnlock()
	if err != nil {
		c.fail(err)
	}
	return err
}

// fail ends the Conn with err (the first call wins): transports abort, pending acks get err.
func (c *Conn) fail(err error) {
	c.failOnce.Do(func() {
		if err == nil || c.closing.Load() {
			err = &Error{Kind: KindClosed, Op: "close", Err: ErrClosed}
		}
		c.err = err
		close(c.done)
		if c.deadTimer != nil {
			c.deadTimer.Stop()
		}
		if c.pingTimer != nil {
			c.pingTimer.Stop()
		}
		c.trMu.RLock()
		tr := c.tr
		c.trMu.RUnlock()
		if tr != nil {
			tr.abort()
		}
		c.ackMu.Lock()
		acks := c.acks
		c.acks = nil
		c.ackMu.Unlock()
		for _, fn := range acks {
			fn(nil, nil, err)
		}
		select {
		case c.connectCh <- err:
		default:
		}
	})
}

// Close disconnects the namespace and closes the session gracefully (a Socket.IO DISCONNECT,
// then an Engine.IO close on polling or a close frame on WebSocket), then waits for the Conn's
// goroutines. It must not be called from an event or ack callback.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		select {
		case <-c.done:
		default:
			c.trMu.RLock()
			tr := c.tr
			c.trMu.RUnlock()
			disc := eioproto.AppendSocketIO(nil, eioproto.SocketIOPacket{Type: eioproto.SIODisconnect, Nsp: c.opts.Namespace, ID: eioproto.NoAck})
			tr.shutdown([]eioproto.Packet{{Type: eioproto.PacketMessage, Data: disc}, {Type: eioproto.PacketClose}}, c.opts.Timeout)
		}
		c.fail(&Error{Kind: KindClosed, Op: "close", Err: ErrClosed})
		c.wg.Wait()
	})
	return nil
}

// Done is closed when the Conn has ended (Close, a server close, an error).
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the Conn ended, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// SID returns the Engine.IO session id.
func (c *Conn) SID() string { return c.open.SID }

// SocketID returns the Socket.IO socket id from the CONNECT answer (protocol 5; "" for 4).
func (c *Conn) SocketID() string { return c.sioSID }

// EIO returns the Engine.IO revision in use.
func (c *Conn) EIO() int { return c.eio }

// PingInterval returns the server's heartbeat interval from the open packet.
func (c *Conn) PingInterval() time.Duration {
	return time.Duration(c.open.PingInterval) * time.Millisecond
}

// Transport returns the current transport: "polling" or "websocket".
func (c *Conn) Transport() string {
	c.trMu.RLock()
	defer c.trMu.RUnlock()
	return c.tr.name()
}

// OnEvent sets the handler of server events (nil removes it). Events that arrive with no handler
// are dropped. The handler runs on the reader goroutine and must not block.
func (c *Conn) OnEvent(h func(*Event)) {
	if h == nil {
		c.onEvent.Store(nil)
		return
	}
	c.onEvent.Store(&h)
}

// Emit sends an event without an ack. Top-level []byte arguments are sent as binary attachments.
func (c *Conn) Emit(event string, args ...any) error {
	return c.emit(event, args, eioproto.NoAck)
}

// EmitAckFunc sends an event that asks for an ack and returns at once; fn gets the ack (or the
// error that ended the Conn). Top-level []byte arguments are sent as binary attachments.
func (c *Conn) EmitAckFunc(event string, args []any, fn AckFunc) error {
	_, err := c.emitAck(event, args, fn)
	return err
}

// emitAck registers fn under a fresh ack id and sends the event.
func (c *Conn) emitAck(event string, args []any, fn AckFunc) (int64, error) {
	c.ackMu.Lock()
	if c.acks == nil {
		c.ackMu.Unlock()
		return 0, c.err
	}
	id := c.nextAck
	c.nextAck++
	c.acks[id] = fn
	c.ackMu.Unlock()
	if err := c.emit(event, args, id); err != nil {
		c.takeAck(id)
		return 0, err
	}
	return id, nil
}

// EmitAck sends an event and waits for its ack, returning the ack's arguments. Binary
// attachments of the ack stay as placeholders; use EmitAckFunc to get them.
func (c *Conn) EmitAck(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	type result struct {
		args []json.RawMessage
		err  error
	}
	ch := make(chan result, 1)
	id, err := c.emitAck(event, args, func(a []json.RawMessage, _ [][]byte, err error) {
		ch <- result{a, err}
	})
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.args, r.err
	case <-ctx.Done():
		c.takeAck(id)
		return nil, &Error{Kind: KindAckTimeout, Op: "ack", Err: ctx.Err()}
	}
}

// takeAck removes and returns the callback of ack id.
func (c *Conn) takeAck(id int64) AckFunc {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	fn := c.acks[id]
	delete(c.acks, id)
	return fn
}

// PendingAcks returns the number of acks not received yet.
func (c *Conn) PendingAcks() int {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	return len(c.acks)
}

// emit encodes and sends one event with its attachments.
func (c *Conn) emit(event string, args []any, id int64) error {
	if event == "" {
		return &Error{Kind: KindOther, Op: "emit", Err: errors.New("empty event name")}
	}
	return c.sendSIO(eioproto.SIOEvent, event, args, id)
}

// sendSIO encodes an event or ack (binary variant when args hold []byte) and sends it.
func (c *Conn) sendSIO(typ int, head string, args []any, id int64) error {
	data, atts, err := encodeArgs(nil, head, args)
	if err != nil {
		return &Error{Kind: KindOther, Op: "emit", Err: err}
	}
	p := eioproto.SocketIOPacket{Type: typ, Nsp: c.opts.Namespace, ID: id, Data: data}
	if len(atts) > 0 {
		p.Type += eioproto.SIOBinaryEvent - eioproto.SIOEvent
		p.Attachments = len(atts)
	}
	pkts := make([]eioproto.Packet, 0, 1+len(atts))
	pkts = append(pkts, eioproto.Packet{Type: eioproto.PacketMessage, Data: eioproto.AppendSocketIO(make([]byte, 0, len(data)+16), p)})
	for _, a := range atts {
		pkts = append(pkts, eioproto.Packet{Type: eioproto.PacketMessage, Data: a, Binary: true})
	}
	return c.send(pkts...)
}
