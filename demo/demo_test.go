package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"sioproxy/eioserver/eiotest"
)

func startDemo(t *testing.T, n int) []string {
	t.Helper()
	urls, stop, err := Start(context.Background(), n, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	if len(urls) != n {
		t.Fatalf("%d urls, want %d", len(urls), n)
	}
	return urls
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPagesServed(t *testing.T) {
	urls := startDemo(t, 1)
	tests := []struct {
		path, ctype string
		status      int
		contains    []string
	}{
		{"/", "text/html; charset=utf-8", 200, []string{`id="backend"`, `id="transport"`, `id="sid"`, `id="messages"`, `id="text"`, `id="send"`, `src="/demo.js"`}},
		{"/demo.js", "text/javascript; charset=utf-8", 200, []string{"2probe", "EIO=4", `"chat"`, `"whoami"`}},
		{"/nope", "text/plain; charset=utf-8", 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(urls[0] + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != tc.ctype {
				t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for _, s := range tc.contains {
				if !strings.Contains(string(body), s) {
					t.Fatalf("body lacks %q", s)
				}
			}
		})
	}
}

func TestChatCrossesBackends(t *testing.T) {
	urls := startDemo(t, 2)
	ctx := testCtx(t)
	a, err := eiotest.Dial(ctx, urls[0]+"/socket.io/", eiotest.Polling)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := eiotest.Dial(ctx, urls[1]+"/socket.io/", eiotest.Upgrade)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i, c := range []*eiotest.Client{a, b} {
		ack, err := c.EmitAck(ctx, "whoami")
		if err != nil {
			t.Fatal(err)
		}
		var who struct{ Backend, Transport string }
		_ = json.Unmarshal(ack.Args[0], &who)
		if want := []string{"backend-1", "backend-2"}[i]; who.Backend != want {
			t.Fatalf("client %d on %q, want %q", i, who.Backend, want)
		}
	}
	ack, err := a.EmitAck(ctx, "chat", "  hello from one  ")
	if err != nil || string(ack.Args[0]) != `{"backend":"backend-1"}` {
		t.Fatalf("chat ack %s %v", ack.Args, err)
	}
	for i, c := range []*eiotest.Client{a, b} {
		select {
		case ev := <-c.Events:
			var m ChatMessage
			if ev.Name != "chat" || json.Unmarshal(ev.Args[0], &m) != nil ||
				m.Backend != "backend-1" || m.Text != "hello from one" || m.From == "" || m.At == 0 {
				t.Fatalf("client %d got %s %s", i, ev.Name, ev.Args)
			}
		case <-ctx.Done():
			t.Fatalf("client %d got no chat", i)
		}
	}
}

func TestChatValidation(t *testing.T) {
	urls := startDemo(t, 1)
	ctx := testCtx(t)
	c, err := eiotest.Dial(ctx, urls[0]+"/socket.io/", eiotest.WebSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, arg := range []any{"   ", strings.Repeat("x", maxChatLen+1), 42} {
		ack, err := c.EmitAck(ctx, "chat", arg)
		if err != nil || !strings.Contains(string(ack.Args[0]), `"error"`) {
			t.Fatalf("chat %v: ack %s %v", arg, ack.Args, err)
		}
	}
	if _, _, err := Start(ctx, 0, nil); err == nil {
		t.Fatal("Start(0) succeeded")
	}
}

func TestStopOnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls, stop, err := Start(ctx, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c, err := eiotest.Dial(testCtx(t), urls[0]+"/socket.io/", eiotest.WebSocket)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-c.Closed:
	case <-time.After(10 * time.Second):
		t.Fatal("session survived ctx cancel")
	}
}
