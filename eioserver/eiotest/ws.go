package eiotest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fasthttp/websocket"
)

func (c *Client) wsURL() string {
	u := c.url("websocket")
	return "ws" + strings.TrimPrefix(u, "http")
}

// dialWS opens a WebSocket-only session: the first frame is the open packet.
func (c *Client) dialWS(ctx context.Context) error {
	conn, resp, err := websocket.DefaultDialer.DialContext(ctx, c.wsURL(), nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("eiotest: websocket dial: %w (status %d)", err, resp.StatusCode)
		}
		return err
	}
	_, msg, err := conn.ReadMessage()
	if err != nil {
		_ = conn.Close()
		return err
	}
	if err := c.onOpen(msg); err != nil {
		_ = conn.Close()
		return err
	}
	c.ws = conn
	c.transport.Store("websocket")
	go c.readWS(conn)
	return nil
}

// upgrade probes a WebSocket for the polling session, pauses polling and switches.
func (c *Client) upgrade(ctx context.Context) error {
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, c.wsURL(), nil)
	if err != nil {
		return fmt.Errorf("eiotest: probe dial: %w", err)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		_ = conn.Close()
		return err
	}
	_, msg, err := conn.ReadMessage()
	if err != nil || string(msg) != "3probe" {
		_ = conn.Close()
		return fmt.Errorf("eiotest: probe answer %q: %v", msg, err)
	}
	// Pause polling: the server answers the pending GET with a noop.
	close(c.pollStop)
	select {
	case <-c.pollDone:
	case <-ctx.Done():
		_ = conn.Close()
		return ctx.Err()
	}
	c.postMu.Lock() // no POST in flight
	c.wsMu.Lock()
	err = conn.WriteMessage(websocket.TextMessage, []byte("5"))
	if err == nil {
		c.ws = conn
		c.transport.Store("websocket")
	}
	c.wsMu.Unlock()
	c.postMu.Unlock()
	if err != nil {
		_ = conn.Close()
		return err
	}
	go c.readWS(conn)
	return nil
}

func (c *Client) readWS(conn *websocket.Conn) {
	for {
		typ, msg, err := conn.ReadMessage()
		if err != nil {
			c.fail(errors.Join(errors.New("eiotest: websocket closed"), err))
			return
		}
		if typ == websocket.BinaryMessage {
			c.onBinary(msg)
			continue
		}
		c.onPacket(msg)
	}
}
