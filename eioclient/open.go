package eioclient

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"sioproxy/eioproto"
)

// dial runs the handshake, the Socket.IO connect and the upgrade.
func (c *Conn) dial(ctx context.Context) error {
	var rest []eioproto.Packet
	var start func()
	var err error
	if c.opts.Mode == WebSocket {
		rest, start, err = c.openWebSocket(ctx)
	} else {
		rest, start, err = c.openPolling(ctx)
	}
	if err != nil {
		return err
	}
	c.startHeartbeat()
	if c.eio == 4 || c.opts.Namespace != "/" {
		// Protocol 5 always connects explicitly; protocol 4 only for non-default namespaces.
		pkt := eioproto.AppendSocketIO(nil, eioproto.SocketIOPacket{Type: eioproto.SIOConnect, Nsp: c.opts.Namespace, ID: eioproto.NoAck})
		if err := c.send(eioproto.Packet{Type: eioproto.PacketMessage, Data: pkt}); err != nil {
			return err
		}
	}
	for _, p := range rest { // before the reader starts: one packet handler at a time
		c.handle(p)
	}
	start()
	select {
	case err = <-c.connectCh:
	case <-c.done:
		err = c.err
	case <-ctx.Done():
		err = &Error{Kind: KindTimeout, Op: "connect", Err: ctx.Err()}
	}
	if err != nil {
		return err
	}
	if c.opts.Mode == Upgrade {
		return c.upgrade(ctx)
	}
	return nil
}

// setTransport installs tr as the current transport.
func (c *Conn) setTransport(tr transport) {
	c.trMu.Lock()
	c.tr = tr
	c.trMu.Unlock()
}

// openPolling performs the polling handshake. It returns the packets that followed the open
// packet and a function that starts the polling loops.
func (c *Conn) openPolling(ctx context.Context) ([]eioproto.Packet, func(), error) {
	p := newPolling(c)
	c.setTransport(p)
	pkts, err := p.handshake(ctx)
	if err != nil {
		return nil, nil, err
	}
	rest, err := c.parseOpen("handshake", pkts)
	if err != nil {
		return nil, nil, err
	}
	return rest, p.start, nil
}

// openWebSocket performs a WebSocket-only handshake: the first message is the open packet.
func (c *Conn) openWebSocket(ctx context.Context) ([]eioproto.Packet, func(), error) {
	w, err := dialWS(ctx, c, "handshake", "")
	if err != nil {
		return nil, nil, err
	}
	c.setTransport(w)
	select { // a Dial timeout that fired during dialWS found no transport to abort
	case <-c.done:
		w.abort()
		return nil, nil, c.err
	default:
	}
	deadline, _ := ctx.Deadline()
	p, err := w.readPacket("handshake", deadline)
	if err != nil {
		return nil, nil, err
	}
	rest, err := c.parseOpen("handshake", []eioproto.Packet{p})
	if err != nil {
		return nil, nil, err
	}
	return rest, w.start, nil
}

// upgrade moves a polling session to WebSocket: open the WebSocket with the sid, 2probe/3probe,
// pause polling (wait for the in-flight GET and POST, send no new ones), send 5, then send the
// packets queued meanwhile on the WebSocket. Any failure is a KindUpgrade error.
func (c *Conn) upgrade(ctx context.Context) error {
	fail := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) || KindOf(err) == KindTimeout {
			return &Error{Kind: KindUpgrade, Op: "upgrade", Err: fmt.Errorf("timeout: %w", err)}
		}
		return &Error{Kind: KindUpgrade, Op: "upgrade", Err: err}
	}
	if !slices.Contains(c.open.Upgrades, "websocket") {
		return fail(fmt.Errorf("server offers no websocket upgrade (upgrades %q)", c.open.Upgrades))
	}
	p, ok := c.tr.(*polling)
	if !ok {
		return fail(errors.New("not on polling"))
	}
	w, err := dialWS(ctx, c, "probe", c.open.SID)
	if err != nil {
		return fail(err)
	}
	switched := false
	defer func() {
		if !switched {
			w.abort()
		}
	}()
	if err := w.send([]eioproto.Packet{{Type: eioproto.PacketPing, Data: []byte("probe")}}); err != nil {
		return fail(err)
	}
	deadline, _ := ctx.Deadline()
	pong, err := w.readPacket("probe", deadline)
	if err != nil {
		return fail(err)
	}
	if pong.Type != eioproto.PacketPong || string(pong.Data) != "probe" || pong.Binary {
		return fail(fmt.Errorf("probe answered with packet type %d %q", pong.Type, pong.Data))
	}
	p.pause()
	for _, ch := range []chan struct{}{p.getDone, p.postDone} {
		select {
		case <-ch:
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return fail(fmt.Errorf("polling did not pause: %w", ctx.Err()))
		}
	}
	if err := w.send([]eioproto.Packet{{Type: eioproto.PacketUpgrade}}); err != nil {
		return fail(err)
	}
	c.trMu.Lock()
	c.tr = w
	err = w.send(p.takeQueue())
	c.trMu.Unlock()
	switched = true
	p.abort()
	select { // fail ran before the switch: it aborted polling, not w
	case <-c.done:
		w.abort()
		return c.err
	default:
	}
	if err != nil {
		return err
	}
	w.start()
	return nil
}
