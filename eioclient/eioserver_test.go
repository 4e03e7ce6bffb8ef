package eioclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"sioproxy/eioclient"
	"sioproxy/eioserver"
)

// startEIOServer serves an eioserver on 127.0.0.1:0 and returns its base URL.
func startEIOServer(t *testing.T, opts eioserver.Options) (*eioserver.Server, string) {
	t.Helper()
	srv := eioserver.New(opts)
	l, err := srv.Listen("127.0.0.1:0", "eioserver")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return srv, l.URL
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEIOServer runs a whole session against eioserver in every mode: connect, acked text and
// binary events, a server event with an attachment, heartbeats, and a graceful close.
func TestEIOServer(t *testing.T) {
	tests := []struct {
		mode      eioclient.Mode
		transport string
	}{
		{eioclient.Polling, "polling"},
		{eioclient.Upgrade, "websocket"},
		{eioclient.WebSocket, "websocket"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			disconnected := make(chan string, 1)
			_, base := startEIOServer(t, eioserver.Options{
				Name:         "b1",
				PingInterval: 40 * time.Millisecond,
				PingTimeout:  200 * time.Millisecond,
				OnConnect: func(s *eioserver.Socket) {
					s.Emit("hello", "world", []byte{1, 2, 3})
				},
				OnDisconnect: func(_ *eioserver.Socket, reason string) { disconnected <- reason },
			})
			ctx := testCtx(t)
			events := make(chan *eioclient.Event, 4)
			c, err := eioclient.Dial(ctx, eioclient.Options{
				URL: base, Mode: tt.mode, OnEvent: func(e *eioclient.Event) { events <- e },
			})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			if got := c.Transport(); got != tt.transport {
				t.Errorf("Transport() = %q, want %q", got, tt.transport)
			}
			if c.SID() == "" || c.SocketID() == "" {
				t.Errorf("SID() = %q, SocketID() = %q: want both set", c.SID(), c.SocketID())
			}

			select {
			case e := <-events:
				if e.Name != "hello" || len(e.Args) != 2 || string(e.Args[0]) != `"world"` ||
					len(e.Attachments) != 1 || string(e.Attachments[0]) != "\x01\x02\x03" {
					t.Errorf("event = %s %s %q", e.Name, e.Args, e.Attachments)
				}
			case <-ctx.Done():
				t.Fatal("no hello event")
			}

			args, err := c.EmitAck(ctx, "echo", "hi")
			if err != nil || len(args) != 1 || string(args[0]) != `{"backend":"b1","data":"hi"}` {
				t.Fatalf("EmitAck = %s, %v", args, err)
			}

			type ack struct {
				args []json.RawMessage
				atts [][]byte
				err  error
			}
			got := make(chan ack, 1)
			if err := c.EmitAckFunc("echo", []any{[]byte{9, 8}}, func(a []json.RawMessage, atts [][]byte, err error) {
				got <- ack{a, atts, err}
			}); err != nil {
				t.Fatal(err)
			}
			a := <-got
			if a.err != nil || len(a.atts) != 1 || string(a.atts[0]) != "\x09\x08" {
				t.Fatalf("binary ack = %s %q %v", a.args, a.atts, a.err)
			}

			// Several heartbeats later the session is still up on both sides.
			select {
			case <-c.Done():
				t.Fatalf("session ended: %v", c.Err())
			case r := <-disconnected:
				t.Fatalf("server dropped the socket: %s", r)
			case <-time.After(10 * 40 * time.Millisecond):
			}
			if _, err := c.EmitAck(ctx, "echo", 1); err != nil {
				t.Fatalf("EmitAck after heartbeats: %v", err)
			}
			if n := c.PendingAcks(); n != 0 {
				t.Errorf("PendingAcks() = %d, want 0", n)
			}

			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-disconnected:
			case <-ctx.Done():
				t.Fatal("server saw no disconnect")
			}
			if kind := eioclient.KindOf(c.Err()); kind != eioclient.KindClosed {
				t.Errorf("Err() kind after Close = %q, want closed", kind)
			}
			if err := c.Emit("echo", 1); eioclient.KindOf(err) != eioclient.KindClosed {
				t.Errorf("Emit after Close: %v, want a closed error", err)
			}
		})
	}
}

// TestEIOServerDisconnect checks that a server-side disconnect ends the Conn and its pending
// acks with KindClosed.
func TestEIOServerDisconnect(t *testing.T) {
	for _, mode := range []eioclient.Mode{eioclient.Polling, eioclient.WebSocket} {
		t.Run(mode.String(), func(t *testing.T) {
			srv, base := startEIOServer(t, eioserver.Options{})
			kick := make(chan struct{})
			srv.OnEvent("kick", func(s *eioserver.Socket, _ []json.RawMessage, _ func(...any)) {
				<-kick
				s.Disconnect()
			})
			ctx := testCtx(t)
			c, err := eioclient.Dial(ctx, eioclient.Options{URL: base, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ackErr := make(chan error, 1)
			if err := c.EmitAckFunc("kick", nil, func(_ []json.RawMessage, _ [][]byte, err error) { ackErr <- err }); err != nil {
				t.Fatal(err)
			}
			close(kick)
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("Conn did not end")
			}
			if kind := eioclient.KindOf(c.Err()); kind != eioclient.KindClosed {
				t.Errorf("Err() = %v, want kind closed", c.Err())
			}
			if err := <-ackErr; eioclient.KindOf(err) != eioclient.KindClosed {
				t.Errorf("pending ack got %v, want kind closed", err)
			}
		})
	}
}

func TestEIOServerAckTimeout(t *testing.T) {
	_, base := startEIOServer(t, eioserver.Options{})
	c, err := eioclient.Dial(testCtx(t), eioclient.Options{URL: base, Mode: eioclient.WebSocket})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the server never acks an unknown event; an ended context must not wait for it
	_, err = c.EmitAck(ctx, "no-such-event")
	if eioclient.KindOf(err) != eioclient.KindAckTimeout || !errors.Is(err, context.Canceled) {
		t.Fatalf("EmitAck = %v, want ack_timeout wrapping context.Canceled", err)
	}
	if n := c.PendingAcks(); n != 0 {
		t.Errorf("PendingAcks() = %d after the timeout, want 0", n)
	}
}

// TestDialErrors checks the Kind of the usual ways a connect fails.
func TestDialErrors(t *testing.T) {
	_, base := startEIOServer(t, eioserver.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	_ = ln.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	tests := []struct {
		name string
		opts eioclient.Options
		want eioclient.Kind
	}{
		{"refused polling", eioclient.Options{URL: closedURL}, eioclient.KindDial},
		{"refused websocket", eioclient.Options{URL: closedURL, Mode: eioclient.WebSocket}, eioclient.KindDial},
		{"wrong path polling", eioclient.Options{URL: base, Path: "/nope/"}, eioclient.KindHTTPStatus},
		{"wrong path websocket", eioclient.Options{URL: base, Path: "/nope/", Mode: eioclient.WebSocket}, eioclient.KindHTTPStatus},
		{"EIO 3 on a v4-only server", eioclient.Options{URL: base, EIO: 3}, eioclient.KindHTTPStatus},
		{"silent server", eioclient.Options{URL: "http://" + silent.Addr().String(), Timeout: 200 * time.Millisecond}, eioclient.KindTimeout},
		{"bad URL", eioclient.Options{URL: "ftp://x"}, eioclient.KindOther},
		{"bad EIO", eioclient.Options{URL: base, EIO: 5}, eioclient.KindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := eioclient.Dial(testCtx(t), tt.opts)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if got := eioclient.KindOf(err); got != tt.want {
				t.Fatalf("KindOf(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
}
