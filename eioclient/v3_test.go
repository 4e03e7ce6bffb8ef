package eioclient

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestV3Server runs sessions against the in-test Engine.IO v3 server in every mode, with text
// and XHR2 binary framing of poll responses: implicit connect, a binary server event, acked text
// and binary events, and client-sent heartbeats.
func TestV3Server(t *testing.T) {
	for _, mode := range []Mode{Polling, Upgrade, WebSocket} {
		for _, binaryFraming := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/binaryFraming=%v", mode, binaryFraming), func(t *testing.T) {
				srv, base := newV3Server(t, binaryFraming)
				ctx := newTestCtx(t)
				events := make(chan *Event, 4)
				c, err := Dial(ctx, Options{URL: base, EIO: 3, Mode: mode, OnEvent: func(e *Event) { events <- e }})
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				want := map[Mode]string{Polling: "polling", Upgrade: "websocket", WebSocket: "websocket"}[mode]
				if c.Transport() != want || c.EIO() != 3 || c.PingInterval() != 30*time.Millisecond {
					t.Errorf("Transport %q EIO %d PingInterval %v", c.Transport(), c.EIO(), c.PingInterval())
				}
				select {
				case e := <-events:
					if e.Name != "hello" || string(e.Args[0]) != `"v3"` || len(e.Attachments) != 1 || string(e.Attachments[0]) != "\x07\x07" {
						t.Errorf("event %s %s %q", e.Name, e.Args, e.Attachments)
					}
				case <-ctx.Done():
					t.Fatal("no hello event")
				}
				args, err := c.EmitAck(ctx, "echo", "hi €😀", 2)
				if err != nil || len(args) != 2 || string(args[0]) != `"hi €😀"` || string(args[1]) != "2" {
					t.Fatalf("EmitAck = %s, %v", args, err)
				}
				got := make(chan [][]byte, 1)
				if err := c.EmitAckFunc("echo", []any{[]byte{5, 6}}, func(_ []json.RawMessage, atts [][]byte, err error) {
					if err != nil {
						t.Error(err)
					}
					got <- atts
				}); err != nil {
					t.Fatal(err)
				}
				if atts := <-got; len(atts) != 1 || string(atts[0]) != "\x05\x06" {
					t.Fatalf("binary ack attachments %q", atts)
				}
				for range 3 { // the client pings every pingInterval
					select {
					case <-srv.pings:
					case <-c.Done():
						t.Fatalf("session ended: %v", c.Err())
					case <-ctx.Done():
						t.Fatal("client sent no pings")
					}
				}
				if err := c.Err(); err != nil {
					t.Fatalf("Err() = %v after heartbeats", err)
				}
			})
		}
	}
}

// TestHeartbeatTimeout checks that a v3 client whose pings go unanswered (and that hears
// nothing else) ends the session with KindPing after pingInterval+pingTimeout.
func TestHeartbeatTimeout(t *testing.T) {
	srv, base := newV3Server(t, false)
	ctx := newTestCtx(t)
	c, err := Dial(ctx, Options{URL: base, EIO: 3, Mode: WebSocket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv.mute.Store(true)
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("no heartbeat timeout")
	}
	if kind := KindOf(c.Err()); kind != KindPing {
		t.Fatalf("Err() = %v, want kind ping", c.Err())
	}
	if err := c.Emit("x"); KindOf(err) != KindPing {
		t.Fatalf("Emit on a dead Conn = %v, want the ping error", err)
	}
}

func newTestCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
