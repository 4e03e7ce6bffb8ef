package limits

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "limits",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client"},
		Tools:       []string{"prlimit"},
	})
}

// startProxy starts sioproxy in front of bs with the YAML extraProxy under "proxy:", through the
// command prefix (nil: none), and waits until it listens.
func startProxy(t *testing.T, bs []*testkit.Backend, extraProxy string, prefix []string) *testkit.Proxy {
	t.Helper()
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %q\nadmin:\n  listen: %q\nlog:\n  level: info\nbackends:\n", addr, admin)
	for _, b := range bs {
		fmt.Fprintf(&y, "  - id: %s\n    url: %s\n", b.Name, b.URL())
	}
	if extraProxy != "" {
		y.WriteString("proxy:\n")
		for _, l := range strings.Split(strings.TrimSpace(extraProxy), "\n") {
			y.WriteString("  " + l + "\n")
		}
	}
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: admin, Args: []string{"-config", cfg}, Prefix: prefix})
}

// keepAlive is a client connection that has made one request and stays open for more.
type keepAlive struct{ *testkit.RawConn }

func openKeepAlive(t *testing.T, addr string) keepAlive {
	t.Helper()
	c, err := testkit.DialRaw(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	k := keepAlive{c}
	if err := k.get("/__name"); err != nil {
		t.Fatalf("first request on a keep-alive connection: %v", err)
	}
	return k
}

// get sends GET path and wants 200.
func (k keepAlive) get(path string) error {
	if err := k.Send([]byte("GET "+path+" HTTP/1.1\r\nHost: limits.test\r\n\r\n"), 3*time.Second); err != nil {
		return err
	}
	r, err := k.ReadResponse(http.MethodGet, 10*time.Second)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("answer %s", r)
	}
	return nil
}

// upgrade sends a WebSocket-only Engine.IO upgrade and wants 101: the proxy must dial the backend.
func (k keepAlive) upgrade() error {
	req := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: limits.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if err := k.Send([]byte(req), 3*time.Second); err != nil {
		return err
	}
	r, err := k.ReadResponse(http.MethodGet, 10*time.Second)
	if err != nil {
		return err
	}
	if r.Status != http.StatusSwitchingProtocols {
		return fmt.Errorf("answer %s", r)
	}
	return nil
}

// metric reads a metric; found is false when the proxy does not export it.
func metric(t *testing.T, px *testkit.Proxy, name string, labels ...string) (float64, bool) {
	t.Helper()
	text, err := px.MetricsText()
	if err != nil {
		t.Errorf("%v", err)
		return 0, false
	}
	return testkit.MetricValue(text, name, labels...)
}

func assertNoFailures(t *testing.T, px *testkit.Proxy) {
	t.Helper()
	states, err := px.BackendStates()
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	for id, s := range states {
		if s.Failures != 0 || s.Ejected {
			t.Errorf("backend %s: %d failures, ejected %v", id, s.Failures, s.Ejected)
		}
	}
}

// TestDescriptorLimit (#3): under a descriptor limit of 256, 600 idle connections must not end the
// process. Connections beyond the client limit (derived from the descriptor limit, with
// descriptors held in reserve for backend dials) are refused politely and counted; connections
// already open keep working, including a request that needs a new backend dial; the limit shows in
// the metrics; and once the idle connections are gone, real clients connect as before.
func TestDescriptorLimit(t *testing.T) {
	const limit, idle = 256, 600
	bs := testkit.StartBackends(t, 2, "fd%d", "4")
	px := startProxy(t, bs, "", []string{testkit.Tool("prlimit"), fmt.Sprintf("--nofile=%d:%d", limit, limit), "--"})
	ka := openKeepAlive(t, px.Addr)
	ws := openKeepAlive(t, px.Addr)

	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dialErrs := 0
	for i := 0; i < idle; i++ {
		c, err := net.DialTimeout("tcp", px.Addr, 2*time.Second)
		if err != nil {
			dialErrs++
			continue
		}
		conns = append(conns, c)
	}
	t.Logf("%d idle connections open, %d dials failed", len(conns), dialErrs)

	// The proxy takes the flood without exiting, and says so in its metrics.
	var refused float64
	testkit.WaitFor(5*time.Second, func() bool {
		if px.Exited() {
			return true
		}
		m, _ := metric(t, px, "sioproxy_conns_refused_total")
		refused = m
		return refused > 0
	})
	if px.Exited() {
		t.Fatalf("the proxy exited at its descriptor limit: %v\n%s", px.Err(), px.Tail(5))
	}
	max, ok := metric(t, px, "sioproxy_client_conns_max")
	switch {
	case !ok:
		t.Errorf("no sioproxy_client_conns_max metric")
	case max <= 0 || max >= limit:
		t.Errorf("sioproxy_client_conns_max %v; want a limit derived from the descriptor limit %d, below it", max, limit)
	}
	if cur, ok := metric(t, px, "sioproxy_client_conns"); !ok || (max > 0 && cur > max) {
		t.Errorf("sioproxy_client_conns %v (exported %v), max %v", cur, ok, max)
	}
	if refused == 0 {
		t.Errorf("sioproxy_conns_refused_total is 0 after %d connections under a limit of %d", len(conns), limit)
	}
	if fds, ok := metric(t, px, "process_max_fds"); !ok || fds != limit {
		t.Errorf("process_max_fds %v, want %d (the prlimit did not apply?)", fds, limit)
	}

	// A new connection beyond the limit gets an answer or a close, never a hang.
	if c, err := testkit.DialRaw(px.Addr); err != nil {
		t.Errorf("new connection at the limit: %v", err)
	} else {
		_ = c.Send([]byte("GET /__name HTTP/1.1\r\nHost: limits.test\r\n\r\n"), 2*time.Second)
		r, err := c.ReadResponse(http.MethodGet, 5*time.Second)
		switch {
		case errors.Is(err, io.EOF) || isReset(err):
		case err != nil:
			t.Errorf("new connection at the limit: %v; want an answer (503) or a close", err)
		case r.Status != http.StatusOK && r.Status != http.StatusServiceUnavailable:
			t.Errorf("new connection at the limit: %s; want 503 (or 200)", r)
		}
		c.Close()
	}
	// Connections that were open before keep working; an upgrade dials the backend from the reserve.
	if err := ka.get("/__name"); err != nil {
		t.Errorf("keep-alive connection opened before the flood: %v", err)
	}
	if err := ws.upgrade(); err != nil {
		t.Errorf("WebSocket upgrade at the limit (a backend dial): %v", err)
	}
	if px.Exited() {
		t.Fatalf("the proxy exited: %v", px.Err())
	}

	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if !testkit.WaitFor(15*time.Second, func() bool {
		cur, ok := metric(t, px, "sioproxy_client_conns")
		return ok && cur < 20
	}) {
		t.Errorf("sioproxy_client_conns did not come down after the idle connections closed")
	}
	sum := testkit.RunClients(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 30, Emits: 3, Concurrency: 15, TimeoutMs: 15000})
	if sum.OK != 30 {
		t.Errorf("after the flood: %d of 30 real sessions ok: %v", sum.OK, firstErrors(sum))
	}
	assertNoFailures(t, px)
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func firstErrors(sum testkit.ClientSummary) []string {
	var out []string
	for _, s := range sum.Sessions {
		if !s.OK && len(out) < 5 {
			out = append(out, strings.Join(s.Errors, "; "))
		}
	}
	return out
}

// slowConn trickles a request head one byte at a time and records when the proxy closed it.
type slowConn struct {
	conn     net.Conn
	opened   time.Time
	closedAt atomic.Int64 // unix ns; 0 while open
	answer   atomic.Value // first bytes the proxy wrote, if any
}

// trickle writes head one byte every gap until the proxy closes the connection or stop is closed.
func trickle(addr string, head string, gap time.Duration, stop <-chan struct{}) (*slowConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	s := &slowConn{conn: c, opened: time.Now()}
	go func() {
		buf := make([]byte, 512)
		n, _ := c.Read(buf) // returns on the proxy's answer or close
		if n > 0 {
			s.answer.Store(string(buf[:n]))
		}
		s.closedAt.Store(time.Now().UnixNano())
	}()
	go func() {
		t := time.NewTicker(gap)
		defer t.Stop()
		for i := 0; ; i = (i + 1) % len(head) {
			if s.closedAt.Load() != 0 {
				return
			}
			if _, err := c.Write([]byte{head[i]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// TestSlowloris (#3, #4): 1,000 connections trickle request heads, a byte every 2 s. Real clients
// keep working meanwhile, and the proxy closes each slow connection once its head has taken longer
// than the header timeout (10 s by default), not after the 60 s a whole request may take.
func TestSlowloris(t *testing.T) {
	const n = 1000
	const headerTimeout = 10 * time.Second
	bs := testkit.StartBackends(t, 2, "slow%d", "4")
	px := startProxy(t, bs, "", nil)
	stop := make(chan struct{})
	defer close(stop)
	slow := make([]*slowConn, 0, n)
	defer func() {
		for _, s := range slow {
			s.conn.Close()
		}
	}()
	head := "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: limits.test\r\nX-Slow: " + strings.Repeat("z", 200)
	for i := 0; i < n; i++ {
		s, err := trickle(px.Addr, head, 2*time.Second, stop)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		slow = append(slow, s)
	}
	sum := testkit.RunClients(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 40, Emits: 3, Concurrency: 20, TimeoutMs: 15000})
	if sum.OK != 40 {
		t.Errorf("during the slowloris: %d of 40 real sessions ok: %v", sum.OK, firstErrors(sum))
	}
	deadline := slow[len(slow)-1].opened.Add(headerTimeout + 5*time.Second)
	testkit.WaitFor(time.Until(deadline), func() bool {
		for _, s := range slow {
			if s.closedAt.Load() == 0 {
				return false
			}
		}
		return true
	})
	open, late := 0, 0
	var worst time.Duration
	for _, s := range slow {
		at := s.closedAt.Load()
		if at == 0 {
			open++
			continue
		}
		d := time.Unix(0, at).Sub(s.opened)
		worst = max(worst, d)
		if d > headerTimeout+5*time.Second {
			late++
		}
		if a, _ := s.answer.Load().(string); a != "" && !strings.HasPrefix(a, "HTTP/1.1 408") && !strings.HasPrefix(a, "HTTP/1.1 400") {
			t.Errorf("a slow connection got %q; want 408 or a close", a)
			break
		}
	}
	if open > 0 || late > 0 {
		t.Errorf("%d of %d slow connections still open and %d closed late, %v after the last opened; want each closed within the header timeout (%v) + 5 s (worst so far %v)",
			open, n, late, time.Since(slow[len(slow)-1].opened).Round(time.Second), headerTimeout, worst.Round(time.Millisecond))
	}
	assertNoFailures(t, px)
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// TestHeaderTimeout (#4): with header_timeout 2s, a request head trickled past 2 s is closed (or
// answered 408) soon after, while a long-poll pending much longer than that is not cut: it ends with
// the server's ping, as Engine.IO says.
func TestHeaderTimeout(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "ht%d", "4", "--ping-interval", "6000", "--ping-timeout", "20000")
	px := startProxy(t, bs, "header_timeout: 2s", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	sid, err := c.Handshake(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx, sid); err != nil {
		t.Fatal(err)
	}
	type poll struct {
		status int
		body   string
		err    error
		took   time.Duration
	}
	polled := make(chan poll, 1)
	start := time.Now()
	go func() {
		st, body, err := c.Get(ctx, sid)
		polled <- poll{st, body, err, time.Since(start)}
	}()

	stop := make(chan struct{})
	defer close(stop)
	s, err := trickle(px.Addr, "GET /__name HTTP/1.1\r\nHost: limits.test\r\nX-Slow: "+strings.Repeat("z", 100), 300*time.Millisecond, stop)
	if err != nil {
		t.Fatal(err)
	}
	defer s.conn.Close()
	if !testkit.WaitFor(6*time.Second, func() bool { return s.closedAt.Load() != 0 }) {
		t.Errorf("a head trickled for %v is still open; want it closed soon after the 2 s header timeout", time.Since(s.opened).Round(time.Millisecond))
	} else if d := time.Unix(0, s.closedAt.Load()).Sub(s.opened); d < 1500*time.Millisecond {
		t.Errorf("the slow head was closed after %v, before the 2 s header timeout", d)
	}
	p := <-polled
	switch {
	case p.err != nil:
		t.Errorf("long-poll: %v after %v", p.err, p.took)
	case p.status != http.StatusOK || !strings.Contains(p.body, "2"):
		t.Errorf("long-poll: %d %q after %v; want 200 with the server's ping", p.status, p.body, p.took)
	case p.took < 4*time.Second:
		t.Errorf("long-poll answered after %v, before the server's 6 s ping", p.took)
	}
	assertNoFailures(t, px)
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// TestDeclaredBodyNotPinned (#4): 300 connections each declare a 1 MB body and send only their
// ~200-byte head. The proxy must read bodies as they arrive: its memory (resident set and Go heap in
// use) grows by far less than the 300 MB declared.
func TestDeclaredBodyNotPinned(t *testing.T) {
	const n = 300
	const declared = 1_000_000
	bs := testkit.StartBackends(t, 1, "cl%d", "4")
	px := startProxy(t, bs, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	sid, err := c.Handshake(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rss0, heap0 := memory(t, px)
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	var failed atomic.Int32
	for i := range conns {
		wg.Go(func() {
			cn, err := net.DialTimeout("tcp", px.Addr, 5*time.Second)
			if err != nil {
				failed.Add(1)
				return
			}
			conns[i] = cn
			// Half to a polling sid, half to another path: both kinds of body.
			target := "/socket.io/?EIO=4&transport=polling&sid=" + sid
			if i%2 == 1 {
				target = "/__headers"
			}
			head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: limits.test\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n", target, declared)
			if _, err := cn.Write([]byte(head)); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, cn := range conns {
			if cn != nil {
				cn.Close()
			}
		}
	}()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d connections could not send their head", f, n)
	}
	// Give the proxy time to read every head (and to allocate, if it does).
	var rss, heap int64
	testkit.WaitFor(3*time.Second, func() bool { rss, heap = memory(t, px); return false })
	const bound = 64 << 20
	t.Logf("proxy resident %d -> %d MiB, Go heap in use %d -> %d MiB, with %d heads declaring %d MB", rss0>>20, rss>>20, heap0>>20, heap>>20, n, n*declared/1_000_000)
	if rss-rss0 > bound {
		t.Errorf("proxy resident memory grew by %d MiB for %d bodies that were declared, not sent; want < %d MiB", (rss-rss0)>>20, n, bound>>20)
	}
	if heap-heap0 > bound {
		t.Errorf("proxy Go heap in use grew by %d MiB for %d bodies that were declared, not sent; want < %d MiB", (heap-heap0)>>20, n, bound>>20)
	}
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// memory returns the proxy's resident set (/proc) and Go heap in use (its metrics), in bytes.
func memory(t *testing.T, px *testkit.Proxy) (rss, heap int64) {
	t.Helper()
	kb, err := testkit.ProcMemKB(px.Pid(), "VmRSS")
	if err != nil {
		t.Fatalf("proxy memory: %v", err)
	}
	h, ok := metric(t, px, "go_memstats_heap_inuse_bytes")
	if !ok {
		t.Fatalf("no go_memstats_heap_inuse_bytes metric")
	}
	return kb << 10, int64(h)
}

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
