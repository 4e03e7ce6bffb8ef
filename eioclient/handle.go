package eioclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"sioproxy/eioproto"
)

// Event is a server-sent Socket.IO event.
type Event struct {
	Name        string
	Args        []json.RawMessage // the arguments after the name; binary ones are placeholders
	Attachments [][]byte          // binary attachments, in placeholder "num" order

	c  *Conn
	id int64
}

// WantsAck reports whether the server asked for an ack.
func (e *Event) WantsAck() bool { return e.id != eioproto.NoAck }

// Ack answers the event's ack request ([]byte arguments become attachments). It is a no-op when
// no ack was asked for.
func (e *Event) Ack(args ...any) error {
	if e.id == eioproto.NoAck {
		return nil
	}
	return e.c.sendSIO(eioproto.SIOAck, "", args, e.id)
}

// handle processes one received Engine.IO packet. Only one goroutine calls it at a time.
func (c *Conn) handle(p eioproto.Packet) {
	c.lastRecv.Store(time.Now().UnixNano())
	switch p.Type {
	case eioproto.PacketClose:
		c.fail(&Error{Kind: KindClosed, Op: "read", Err: errors.New("server sent close")})
	case eioproto.PacketPing:
		if c.eio == 4 {
			_ = c.send(eioproto.Packet{Type: eioproto.PacketPong, Data: p.Data})
		}
	case eioproto.PacketMessage:
		c.handleMessage(p)
	}
}

// handleMessage reassembles binary packets and dispatches Socket.IO packets.
func (c *Conn) handleMessage(p eioproto.Packet) {
	if p.Binary {
		if c.partial == nil {
			return // an attachment nobody announced: ignore, as socket.io-client does
		}
		c.partialAtts = append(c.partialAtts, p.Data)
		if len(c.partialAtts) == c.partial.Attachments {
			sp, atts := *c.partial, c.partialAtts
			c.partial, c.partialAtts = nil, nil
			c.dispatch(sp, atts)
		}
		return
	}
	sp, err := eioproto.DecodeSocketIO(p.Data)
	if err != nil {
		c.fail(&Error{Kind: KindProtocol, Op: "read", Err: err})
		return
	}
	if sp.Attachments > 0 {
		c.partial, c.partialAtts = &sp, make([][]byte, 0, sp.Attachments)
		return
	}
	c.dispatch(sp, nil)
}

// dispatch acts on one complete Socket.IO packet.
func (c *Conn) dispatch(sp eioproto.SocketIOPacket, atts [][]byte) {
	if sp.Nsp != c.opts.Namespace {
		return
	}
	switch sp.Type {
	case eioproto.SIOConnect:
		if c.connected {
			return // a repeated answer changes nothing
		}
		c.connected = true
		var ans struct {
			SID string `json:"sid"`
		}
		if len(sp.Data) > 0 {
			_ = json.Unmarshal(sp.Data, &ans)
		}
		c.sioSID = ans.SID
		c.answerConnect(nil)
	case eioproto.SIOConnectError:
		c.answerConnect(&Error{Kind: KindConnect, Op: "connect", Err: fmt.Errorf("refused: %s", sp.Data)})
	case eioproto.SIODisconnect:
		c.fail(&Error{Kind: KindClosed, Op: "read", Err: errors.New("server disconnected the socket")})
	case eioproto.SIOEvent, eioproto.SIOBinaryEvent:
		c.dispatchEvent(sp, atts)
	case eioproto.SIOAck, eioproto.SIOBinaryAck:
		fn := c.takeAck(sp.ID)
		if fn == nil {
			return
		}
		var args []json.RawMessage
		if err := json.Unmarshal(sp.Data, &args); err != nil {
			fn(nil, nil, &Error{Kind: KindProtocol, Op: "ack", Err: err})
			return
		}
		fn(args, atts, nil)
	}
}

// answerConnect reports the first CONNECT answer to Dial.
func (c *Conn) answerConnect(err error) {
	select {
	case c.connectCh <- err:
	default:
	}
}

// dispatchEvent decodes an event and hands it to the handler.
func (c *Conn) dispatchEvent(sp eioproto.SocketIOPacket, atts [][]byte) {
	h := c.onEvent.Load()
	if h == nil {
		return
	}
	var all []json.RawMessage
	if err := json.Unmarshal(sp.Data, &all); err != nil || len(all) == 0 {
		return
	}
	var name string
	if err := json.Unmarshal(all[0], &name); err != nil {
		return
	}
	(*h)(&Event{Name: name, Args: all[1:], Attachments: atts, c: c, id: sp.ID})
}
