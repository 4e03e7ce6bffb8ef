package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"sioproxy/balancer"
)

// reasonCounter is a Metrics that counts Unavailable calls by reason.
type reasonCounter struct {
	NopMetrics
	mu sync.Mutex
	n  map[balancer.Reason]int
}

func (c *reasonCounter) Unavailable(r balancer.Reason) {
	c.mu.Lock()
	c.n[r]++
	c.mu.Unlock()
}

func (c *reasonCounter) get(r balancer.Reason) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[r]
}

// Every 503 the proxy gives a new session, polling or WebSocket-only, is counted with its reason.
func TestUnavailableCounted(t *testing.T) {
	for _, tt := range []struct {
		name   string
		bal    *balancer.Balancer
		reason balancer.Reason
	}{
		{"no backends", balancer.New(balancer.NewRoundRobin()), balancer.NoBackends},
		{"all full", balancer.New(balancer.NewRoundRobin(), balancer.WithAdmission(0, 0, 1)), balancer.AllFull},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reason == balancer.AllFull {
				tt.bal.Update([]balancer.Spec{{ID: "full", Addr: "127.0.0.1:1", Weight: 1, State: balancer.Active}})
				tt.bal.Snapshot().ByID("full").Sessions.Add(1)
			}
			m := &reasonCounter{n: map[balancer.Reason]int{}}
			p := New(zap.NewNop(), tt.bal, testSettings(), WithMetrics(m))
			ln, err := Listen(context.Background(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go p.Serve(ln)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				p.Shutdown(ctx)
			}()
			addr := ln.Addr().String()
			if code, h, _ := get(t, "http://"+addr+"/socket.io/?EIO=4&transport=polling"); code != 503 || h.Get("Retry-After") == "" {
				t.Fatalf("handshake: %d %v", code, h)
			}
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Write([]byte("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != 503 {
				t.Fatalf("websocket-only session: %v %v", resp, err)
			}
			if got := m.get(tt.reason); got != 2 {
				t.Fatalf("Unavailable(%v) called %d times, want 2 (handshake, websocket)", tt.reason, got)
			}
		})
	}
}
