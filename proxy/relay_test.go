package proxy

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"sioproxy/balancer"
)

// startEchoUpgrader is a backend that answers any request with 101 and then echoes every byte:
// the relay benchmark then measures the proxy's tunnel alone.
func startEchoUpgrader(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := readHead(br); err != nil {
					return
				}
				if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"); err != nil {
					return
				}
				io.Copy(c, br)
			}()
		}
	}()
	return ln.Addr().String()
}

// dialEchoTunnel opens a WebSocket-only tunnel through p to the echo upgrader.
func dialEchoTunnel(tb testing.TB, p *testProxy) (*net.TCPConn, *bufio.Reader) {
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	req := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(c)
	head, err := readHead(br)
	if err != nil || !bytes.HasPrefix(head, []byte("HTTP/1.1 101")) {
		tb.Fatalf("upgrade: %q %v", head, err)
	}
	return c.(*net.TCPConn), br
}

func echoProxy(tb testing.TB) *testProxy {
	addr := startEchoUpgrader(tb)
	return startProxy(tb, nil, []balancer.Spec{{ID: "echo", Addr: addr, Weight: 1, State: balancer.Active, Source: "static"}})
}

// TestTunnelRelaysLargeTransfers pushes more than the socket buffers hold both ways at once, so
// writes would block and continue off the poller, and checks every byte, then that a half-close
// by the client ends the tunnel once the backend closes too.
func TestTunnelRelaysLargeTransfers(t *testing.T) {
	p := echoProxy(t)
	c, br := dialEchoTunnel(t, p)
	c.SetReadBuffer(128 << 10) // a small window: the proxy's writes to us block at times
	data := make([]byte, 8<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(br) // the echo backend closes after our FIN: EOF ends the read
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, want %d identical", len(got), len(data))
	}
	waitFor(t, func() bool { return p.Tunnels() == 0 })
}

// TestParkedTunnelsAreClosedByShutdown checks that Shutdown reaches tunnels that have no goroutine.
func TestParkedTunnelsAreClosedByShutdown(t *testing.T) {
	p := echoProxy(t)
	const n = 20
	var conns []*bufio.Reader
	for i := 0; i < n; i++ {
		_, br := dialEchoTunnel(t, p)
		conns = append(conns, br)
	}
	waitFor(t, func() bool { return p.Tunnels() == n })
	if err := p.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, br := range conns {
		if _, err := br.ReadByte(); err == nil {
			t.Fatalf("tunnel %d still open after Shutdown", i)
		}
	}
	if p.Tunnels() != 0 {
		t.Fatalf("%d tunnels left", p.Tunnels())
	}
}

// BenchmarkTunnelRelay sends 64 bytes through an established tunnel to an echoing backend and
// reads them back: one op is one relay each way (steady state, the tunnel is parked in between).
func BenchmarkTunnelRelay(b *testing.B) {
	p := echoProxy(b)
	c, br := dialEchoTunnel(b, p)
	msg := make([]byte, 64)
	got := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(br, got); err != nil {
			b.Fatal(err)
		}
	}
}
