package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// countingMetrics records the listener's events.
type countingMetrics struct {
	NopMetrics
	mu       sync.Mutex
	conns    int
	max      int
	refused  map[string]int
	tunnels  int
	acceptEr int
}

func newCountingMetrics() *countingMetrics { return &countingMetrics{refused: map[string]int{}} }

func (m *countingMetrics) ClientConns(d int)    { m.mu.Lock(); m.conns += d; m.mu.Unlock() }
func (m *countingMetrics) ClientConnsMax(n int) { m.mu.Lock(); m.max = n; m.mu.Unlock() }
func (m *countingMetrics) ConnRefused(r string) { m.mu.Lock(); m.refused[r]++; m.mu.Unlock() }
func (m *countingMetrics) TunnelRefused()       { m.mu.Lock(); m.tunnels++; m.mu.Unlock() }
func (m *countingMetrics) AcceptError()         { m.mu.Lock(); m.acceptEr++; m.mu.Unlock() }

func (m *countingMetrics) get(f func(*countingMetrics) int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return f(m)
}

// echoAddrServer serves, on a front Listener, a handler that answers the client's address as the
// request sees it, and whether it came over TLS.
func echoAddrServer(t testing.TB, o ListenerOptions) (*Listener, string) {
	t.Helper()
	raw, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, o)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		fmt.Fprintf(ctx, "%s tls=%v", ctx.RemoteAddr(), ctx.IsTLS())
	}, ReadTimeout: 5 * time.Second, CloseOnShutdown: true, Logger: zapPrintf{zap.NewNop()}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(); ln.Close() })
	return ln, raw.Addr().String()
}

// dialFrom connects to addr from the loopback address local ("" = any).
func dialFrom(t testing.TB, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes a GET on c and returns the body of the answer, or the error reading it.
func roundTrip(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		return "", err
	}
	return string(resp.Body()), nil
}

// refusedOnRequest sends a request on c (a client speaks first: the listener accepts a connection
// once its first bytes are there) and reports whether the server closed c without an answer.
func refusedOnRequest(c net.Conn) bool {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return true // already closed
	}
	return closedByServer(c)
}

// closedByServer reports whether the server closed c (EOF or reset) without a byte of answer.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n > 0 {
		return false
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

func TestListenerMaxClientConns(t *testing.T) {
	m := newCountingMetrics()
	ln, addr := echoAddrServer(t, ListenerOptions{Limits: Limits{MaxClientConns: 3}, Metrics: m})
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c := dialFrom(t, "", addr)
		if body, err := roundTrip(c); err != nil || !strings.HasPrefix(body, "127.0.0.1:") {
			t.Fatalf("conn %d: %q %v", i, body, err)
		}
		held = append(held, c)
	}
	for i := 0; i < 4; i++ {
		if c := dialFrom(t, "", addr); !refusedOnRequest(c) {
			t.Fatalf("connection %d over the limit was not closed at once", i)
		}
	}
	if got := m.get(func(m *countingMetrics) int { return m.refused[RefusedMaxConns] }); got != 4 {
		t.Errorf("refused max_conns = %d, want 4", got)
	}
	if ln.ClientConns() != 3 || m.get(func(m *countingMetrics) int { return m.conns }) != 3 || m.get(func(m *countingMetrics) int { return m.max }) != 3 {
		t.Errorf("client conns %d, gauge %d, max %d; want 3, 3, 3", ln.ClientConns(), m.conns, m.max)
	}
	held[0].Close()
	waitFor(t, func() bool { return ln.ClientConns() == 2 })
	if body, err := roundTrip(dialFrom(t, "", addr)); err != nil || body == "" {
		t.Fatalf("after a close, a new connection: %q %v", body, err)
	}
}

func TestListenerPerIP(t *testing.T) {
	m := newCountingMetrics()
	ln, addr := echoAddrServer(t, ListenerOptions{Limits: Limits{MaxConnsPerIP: 2}, Metrics: m})
	a1, a2 := dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr)
	for _, c := range []net.Conn{a1, a2} {
		if body, err := roundTrip(c); err != nil || !strings.HasPrefix(body, "127.0.0.2:") {
			t.Fatalf("127.0.0.2: %q %v", body, err)
		}
	}
	if !refusedOnRequest(dialFrom(t, "127.0.0.2", addr)) {
		t.Fatal("third connection of 127.0.0.2 was not refused")
	}
	if body, err := roundTrip(dialFrom(t, "127.0.0.3", addr)); err != nil || !strings.HasPrefix(body, "127.0.0.3:") {
		t.Fatalf("another address is not limited: %q %v", body, err)
	}
	if got := m.get(func(m *countingMetrics) int { return m.refused[RefusedPerIP] }); got != 1 {
		t.Errorf("refused per_ip = %d, want 1", got)
	}
	a1.Close()
	a2.Close()
	waitFor(t, func() bool { return ln.perIP.len() == 1 }) // 127.0.0.3 only: no entry outlives its connections
	if body, err := roundTrip(dialFrom(t, "127.0.0.2", addr)); err != nil || body == "" {
		t.Fatalf("127.0.0.2 after its connections closed: %q %v", body, err)
	}
}

func TestListenerFDReserve(t *testing.T) {
	m := newCountingMetrics()
	var open atomic.Int64
	open.Store(930) // 6 left above the reserve: the next count is due after one more connection
	_, addr := echoAddrServer(t, ListenerOptions{Limits: Limits{ReservedFDs: 64}, NoFile: 1000, Metrics: m,
		openFDs: func() int { return int(open.Load()) }})
	if body, err := roundTrip(dialFrom(t, "", addr)); err != nil || body == "" {
		t.Fatalf("below the reserve: %q %v", body, err)
	}
	open.Store(937) // 63 left: under the reserve
	refusedAt := 0
	for i := 1; i <= 2 && refusedAt == 0; i++ {
		if refusedOnRequest(dialFrom(t, "", addr)) {
			refusedAt = i
		}
	}
	if refusedAt == 0 {
		t.Fatal("connections inside the descriptor reserve were not refused within the count's spacing")
	}
	if got := m.get(func(m *countingMetrics) int { return m.refused[RefusedFDReserve] }); got != 1 {
		t.Errorf("refused fd_reserve = %d, want 1", got)
	}
	open.Store(936) // exactly the reserve left
	if body, err := roundTrip(dialFrom(t, "", addr)); err != nil || body == "" {
		t.Fatalf("at the reserve's edge: %q %v", body, err)
	}
}

func TestFDGateSpacesCounts(t *testing.T) {
	var g fdGate
	if !g.due() {
		t.Fatal("the first connection is not counted")
	}
	g.counted(100, 936) // (936-100)/4 = 209 connections before the next count
	g.next.Store(math.MaxInt64)
	for i := 0; i < 209; i++ {
		if g.due() {
			t.Fatalf("connection %d after a count far from the bound was counted", i+1)
		}
	}
	if !g.due() {
		t.Fatal("the 210th connection was not counted")
	}
	g.counted(936, 936) // at the bound: every connection is counted
	g.next.Store(math.MaxInt64)
	if !g.due() {
		t.Fatal("a connection at the bound was not counted")
	}
	g.counted(-1, 936) // the count failed: count again at once
	g.next.Store(math.MaxInt64)
	if !g.due() {
		t.Fatal("a connection after a failed count was not counted")
	}
	g.counted(100, 936)
	g.next.Store(time.Now().UnixNano() - 1) // fdCountEvery has passed
	if !g.due() {
		t.Fatal("a connection after fdCountEvery was not counted")
	}
}

func TestResolveLimits(t *testing.T) {
	cases := []struct {
		in     Limits
		nofile uint64
		want   Limits
	}{
		{Limits{ReservedFDs: 64}, 20000, Limits{MaxClientConns: 9968, MaxTunnels: 9968, ReservedFDs: 64}},
		{Limits{ReservedFDs: 64}, 256, Limits{MaxClientConns: 96, MaxTunnels: 96, ReservedFDs: 64}},
		{Limits{MaxClientConns: 1000, ReservedFDs: 64}, 20000, Limits{MaxClientConns: 1000, MaxTunnels: 18936, ReservedFDs: 64}},
		{Limits{MaxClientConns: 19000, ReservedFDs: 64}, 20000, Limits{MaxClientConns: 19000, MaxTunnels: 9968, ReservedFDs: 64}},
		{Limits{MaxClientConns: 5, MaxTunnels: 7, MaxConnsPerIP: 2}, 20000, Limits{MaxClientConns: 5, MaxTunnels: 7, MaxConnsPerIP: 2}},
		{Limits{ReservedFDs: 64}, 0, Limits{ReservedFDs: 64}},
		{Limits{ReservedFDs: 500}, 256, Limits{MaxClientConns: 1, MaxTunnels: 1, ReservedFDs: 500}},
	}
	for _, c := range cases {
		if got := ResolveLimits(c.in, c.nofile); got != c.want {
			t.Errorf("ResolveLimits(%+v, %d) = %+v, want %+v", c.in, c.nofile, got, c.want)
		}
	}
}

func TestOpenFDsCounts(t *testing.T) {
	before := OpenFDs()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if after := OpenFDs(); before < 3 || after != before+1 {
		t.Fatalf("OpenFDs: %d, then %d after opening a file", before, after)
	}
}

// TestAcceptSurvivesEMFILE runs a listener in a child process whose descriptor limit is 64 and
// which keeps no reserve: the flood of connections makes accept(2) fail with EMFILE, and the
// listener must back off and keep serving once connections close.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	if os.Getenv("SIOPROXY_EMFILE_CHILD") != "" {
		emfileChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptSurvivesEMFILE$", "-test.v")
	cmd.Env = append(os.Environ(), "SIOPROXY_EMFILE_CHILD=1")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	br := bufio.NewReader(stdout)
	var line string
	for !strings.HasPrefix(line, "addr ") {
		if line, err = br.ReadString('\n'); err != nil {
			t.Fatalf("child: %q %v", line, err)
		}
	}
	go io.Copy(io.Discard, br)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "addr "))
	var held []net.Conn
	for i := 0; i < 150; i++ { // the kernel queues what the child cannot accept
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	ask := func(cmd string) string {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		body, err := roundTripPath(c, cmd)
		if err != nil {
			return err.Error()
		}
		return body
	}
	// The child is at its limit: wait until it has counted accept errors, then free descriptors.
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range held {
		c.Close()
	}
	var errs int
	for time.Now().Before(deadline) {
		if n, err := strconv.Atoi(ask("/errors")); err == nil {
			errs = n
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if errs == 0 {
		t.Fatalf("the child saw no accept error (EMFILE) or does not answer: %q", ask("/errors"))
	}
	for i := 0; i < 20; i++ {
		if got := ask("/"); got != "ok" {
			t.Fatalf("request %d after EMFILE: %q", i, got)
		}
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("child exited: %v", err)
	}
	t.Logf("accept errors while at the descriptor limit: %d", errs)
}

func roundTripPath(c net.Conn, path string) (string, error) {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		return "", err
	}
	return string(resp.Body()), nil
}

// emfileChild is the child of TestAcceptSurvivesEMFILE.
func emfileChild() {
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 64, Max: 64}); err != nil {
		fmt.Println("setrlimit", err)
		os.Exit(1)
	}
	m := newCountingMetrics()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("listen", err)
		os.Exit(1)
	}
	ln := NewListener(raw, ListenerOptions{Metrics: m, Log: zap.NewNop()})
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/errors" {
			fmt.Fprint(ctx, m.get(func(m *countingMetrics) int { return m.acceptEr }))
			return
		}
		ctx.WriteString("ok")
	}, IdleTimeout: time.Minute}
	fmt.Println("addr", raw.Addr())
	err = srv.Serve(ln)
	fmt.Println("serve returned", err)
	os.Exit(3)
}

func TestProxyProtocolV1AndV2(t *testing.T) {
	m := newCountingMetrics()
	_, addr := echoAddrServer(t, ListenerOptions{ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Limits: Limits{MaxConnsPerIP: 1}, Metrics: m})
	v1 := dialFrom(t, "127.0.0.1", addr)
	io.WriteString(v1, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n")
	if body, err := roundTrip(v1); err != nil || !strings.HasPrefix(body, "203.0.113.7:5555 ") {
		t.Fatalf("v1: %q %v", body, err)
	}
	v2 := dialFrom(t, "127.0.0.1", addr)
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("2001:db8::9"), Port: 4444}, &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443})
	if _, err := h.WriteTo(v2); err != nil {
		t.Fatal(err)
	}
	if body, err := roundTrip(v2); err != nil || !strings.HasPrefix(body, "[2001:db8::9]:4444 ") {
		t.Fatalf("v2: %q %v", body, err)
	}
	// The per-address limit counts the PROXY source: a second connection of 203.0.113.7 is refused.
	again := dialFrom(t, "127.0.0.1", addr)
	io.WriteString(again, "PROXY TCP4 203.0.113.7 127.0.0.1 5556 80\r\n")
	if body, err := roundTrip(again); err == nil {
		t.Fatalf("second connection of 203.0.113.7 over max_conns_per_ip=1 answered %q", body)
	}
	// A trusted peer without a header is closed.
	if body, err := roundTrip(dialFrom(t, "127.0.0.1", addr)); err == nil {
		t.Fatalf("trusted peer without a PROXY header answered %q", body)
	}
	// An untrusted peer's PROXY header is refused, never believed.
	forged := dialFrom(t, "127.0.0.5", addr)
	io.WriteString(forged, "PROXY TCP4 198.51.100.1 127.0.0.1 5555 80\r\n")
	if body, err := roundTrip(forged); err == nil {
		t.Fatalf("untrusted PROXY header answered %q", body)
	}
	// An untrusted peer without a header is served under its own address.
	if body, err := roundTrip(dialFrom(t, "127.0.0.6", addr)); err != nil || !strings.HasPrefix(body, "127.0.0.6:") {
		t.Fatalf("untrusted plain peer: %q %v", body, err)
	}
	waitFor(t, func() bool {
		return m.get(func(m *countingMetrics) int { return m.refused[RefusedPerIP] }) == 1 &&
			m.get(func(m *countingMetrics) int { return m.refused[RefusedProxyHeader] }) == 2
	})
}

// TestProxyProtocolSlowHeaderDoesNotBlockAccept: a trusted peer that sends nothing must not hold
// up other connections (the header is read in the connection's goroutine), and is closed after
// the header timeout.
func TestProxyProtocolSlowHeaderDoesNotBlockAccept(t *testing.T) {
	_, addr := echoAddrServer(t, ListenerOptions{ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		ProxyHeaderTimeout: 300 * time.Millisecond})
	silent := dialFrom(t, "", addr)
	c := dialFrom(t, "", addr)
	io.WriteString(c, "PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n")
	if body, err := roundTrip(c); err != nil || !strings.HasPrefix(body, "192.0.2.1:1 ") {
		t.Fatalf("behind a silent peer: %q %v", body, err)
	}
	if !closedByServer(silent) {
		t.Fatal("a peer that never sent its PROXY header was not closed")
	}
}

func TestClientSocketUnwraps(t *testing.T) {
	_, addr := echoAddrServer(t, ListenerOptions{})
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tcp := a.(*net.TCPConn)
	l := &Listener{metrics: NopMetrics{}}
	l.limits.Store(&Limits{})
	cc := &clientConn{Conn: tcp, raw: tcp, l: l}
	if plainTCPOf(cc) != tcp || plainTCPOf(tcp) != tcp {
		t.Error("plainTCPOf does not reach the TCP socket through the listener's wrapper")
	}
	pc := proxyproto.NewConn(tcp)
	if plainTCPOf(&clientConn{Conn: pc, raw: tcp, l: l}) != tcp {
		t.Error("plainTCPOf does not reach the TCP socket under a PROXY reader")
	}
	if plainTCPOf(tlsServerConn(cc)) != nil {
		t.Error("plainTCPOf returned the socket under TLS (its bytes are not the client's)")
	}
}
