package limits

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// wsUpgrade is a WebSocket-only Engine.IO upgrade request.
const wsUpgrade = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: limits.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// refusedOrAnswered sends GET /__name on a new connection from local and reports "served" (200),
// "refused" (503, or closed without an answer) or an error.
func refusedOrAnswered(local, addr string) (string, *testkit.RawConn, error) {
	c, err := testkit.DialRawFrom(local, addr)
	if err != nil {
		return "", nil, err
	}
	_ = c.Send([]byte("GET /__name HTTP/1.1\r\nHost: limits.test\r\n\r\n"), 2*time.Second)
	r, err := c.ReadResponse(http.MethodGet, 5*time.Second)
	switch {
	case err == io.EOF || isReset(err):
		c.Close()
		return "refused", nil, nil
	case err != nil:
		c.Close()
		return "", nil, err
	case r.Status == http.StatusOK:
		return "served", c, nil
	case r.Status == http.StatusServiceUnavailable:
		c.Close()
		return "refused", nil, nil
	default:
		c.Close()
		return "", nil, fmt.Errorf("answer %s", r)
	}
}

// TestPerIPLimit (#3): with max_conns_per_ip 5, a sixth connection from one address is refused
// (503 or closed, counted with reason per_ip) while another address is served, and the address is
// served again once its connections close.
func TestPerIPLimit(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "ip%d", "4")
	px := startProxy(t, bs, "max_conns_per_ip: 5", nil)
	var open []*testkit.RawConn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	served, refused := 0, 0
	for i := 0; i < 10; i++ {
		got, c, err := refusedOrAnswered("127.0.0.3", px.Addr)
		if err != nil {
			t.Fatalf("connection %d from 127.0.0.3: %v", i, err)
		}
		if c != nil {
			open = append(open, c)
		}
		if got == "served" {
			served++
		} else {
			refused++
		}
	}
	if served != 5 || refused != 5 {
		t.Errorf("10 connections from one address with max_conns_per_ip 5: %d served, %d refused; want 5 and 5", served, refused)
	}
	if n, ok := metric(t, px, "sioproxy_conns_refused_total", `reason="per_ip"`); !ok || n < 5 {
		t.Errorf(`sioproxy_conns_refused_total{reason="per_ip"} = %v (exported %v), want >= 5`, n, ok)
	}
	if got, c, err := refusedOrAnswered("127.0.0.4", px.Addr); err != nil || got != "served" {
		t.Errorf("another address: %q %v; want served", got, err)
	} else {
		c.Close()
	}
	for _, c := range open {
		c.Close()
	}
	open = nil
	if !testkit.WaitFor(5*time.Second, func() bool {
		got, c, err := refusedOrAnswered("127.0.0.3", px.Addr)
		if c != nil {
			c.Close()
		}
		return err == nil && got == "served"
	}) {
		t.Errorf("127.0.0.3 is not served again after its connections closed")
	}
	assertNoFailures(t, px)
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// TestTunnelLimit (#3): with max_tunnels 2, a third WebSocket upgrade is refused with 503 and
// counted (sioproxy_tunnels_refused_total); once a tunnel closes, an upgrade succeeds again.
func TestTunnelLimit(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "tun%d", "4")
	px := startProxy(t, bs, "max_tunnels: 2", nil)
	upgrade := func() (*testkit.RawConn, int, error) {
		c, err := testkit.DialRaw(px.Addr)
		if err != nil {
			return nil, 0, err
		}
		_ = c.Send([]byte(wsUpgrade), 2*time.Second)
		r, err := c.ReadResponse(http.MethodGet, 5*time.Second)
		if err != nil {
			c.Close()
			return nil, 0, err
		}
		return c, r.Status, nil
	}
	var tunnels []*testkit.RawConn
	defer func() {
		for _, c := range tunnels {
			c.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		c, st, err := upgrade()
		if err != nil || st != http.StatusSwitchingProtocols {
			t.Fatalf("tunnel %d: %d %v", i, st, err)
		}
		tunnels = append(tunnels, c)
	}
	c, st, err := upgrade()
	if err != nil || st != http.StatusServiceUnavailable {
		t.Errorf("third upgrade with max_tunnels 2: %d %v; want 503", st, err)
	}
	if c != nil {
		c.Close()
	}
	if n, ok := metric(t, px, "sioproxy_tunnels_refused_total"); !ok || n < 1 {
		t.Errorf("sioproxy_tunnels_refused_total = %v (exported %v), want >= 1", n, ok)
	}
	tunnels[0].Close()
	tunnels = tunnels[1:]
	if !testkit.WaitFor(5*time.Second, func() bool {
		c, st, _ := upgrade()
		if c != nil && st == http.StatusSwitchingProtocols {
			tunnels = append(tunnels, c)
			return true
		}
		if c != nil {
			c.Close()
		}
		return false
	}) {
		t.Errorf("no upgrade succeeds after a tunnel closed")
	}
	assertNoFailures(t, px)
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// TestTimeoutsSpareLongPollsStreamsTunnels: read_timeout and write_timeout (3 s here) bound
// ordinary requests, never a long-poll (6 s until the server's ping), a server-sent-events stream
// (5 s) or an idle WebSocket tunnel (the server's ping arrives after 6 s).
func TestTimeoutsSpareLongPollsStreamsTunnels(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "to%d", "4", "--ping-interval", "6000", "--ping-timeout", "20000")
	px := startProxy(t, bs, "header_timeout: 2s\nread_timeout: 3s\nwrite_timeout: 3s", nil)
	type result struct {
		what string
		err  error
	}
	done := make(chan result, 3)
	go func() { // long-poll
		c, err := testkit.DialRaw(px.Addr)
		if err != nil {
			done <- result{"long-poll", err}
			return
		}
		defer c.Close()
		ec := testkit.NewEIOClient(px.URL())
		defer ec.CloseIdle()
		ctx, cancel := contextTimeout(30 * time.Second)
		defer cancel()
		sid, err := ec.Handshake(ctx)
		if err == nil {
			err = ec.Connect(ctx, sid)
		}
		if err != nil {
			done <- result{"long-poll", err}
			return
		}
		start := time.Now()
		st, body, err := ec.Get(ctx, sid)
		if err == nil && (st != http.StatusOK || !strings.Contains(body, "2") || time.Since(start) < 4*time.Second) {
			err = fmt.Errorf("%d %q after %v; want the server's ping after 6 s", st, body, time.Since(start))
		}
		done <- result{"long-poll", err}
	}()
	go func() { // SSE
		resp, err := http.Get(px.URL() + "/__sse?ms=5000")
		if err != nil {
			done <- result{"SSE", err}
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		ended := false
		for sc.Scan() {
			ended = ended || strings.HasPrefix(sc.Text(), "data: done")
		}
		if !ended {
			err = fmt.Errorf("stream cut before its end: %v", sc.Err())
		}
		done <- result{"SSE", err}
	}()
	go func() { // idle tunnel
		c, err := testkit.DialRaw(px.Addr)
		if err != nil {
			done <- result{"tunnel", err}
			return
		}
		defer c.Close()
		_ = c.Send([]byte(wsUpgrade), 2*time.Second)
		r, err := c.ReadResponse(http.MethodGet, 5*time.Second)
		if err != nil || r.Status != http.StatusSwitchingProtocols {
			done <- result{"tunnel", fmt.Errorf("upgrade: %v %v", r, err)}
			return
		}
		// The open packet, then nothing until the server's ping "2" at 6 s.
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		start := time.Now()
		var got []byte
		buf := make([]byte, 512)
		for !strings.Contains(string(got), "\x81\x012") {
			n, err := c.Reader().Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				done <- result{"tunnel", fmt.Errorf("tunnel closed after %v (%v) before the server's ping", time.Since(start).Round(time.Millisecond), err)}
				return
			}
		}
		done <- result{"tunnel", nil}
	}()
	for i := 0; i < 3; i++ {
		if r := <-done; r.err != nil {
			t.Errorf("%s with read_timeout and write_timeout 3s: %v", r.what, r.err)
		}
	}
	assertNoFailures(t, px)
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}
