//go:build linux

package proxy

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// parkPair is a tunnel for the parker alone: two loopback TCP connections whose proxy-side ends
// are parked; the test holds the client's and the backend's ends.
type parkPair struct {
	client, backend *net.TCPConn // the peers' ends
	entry           *tunnelEntry
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// parkOne parks a tunnel between two new connection pairs, as parkTunnel does: the proxy's ends
// are duplicated and their Go connections closed.
func parkOne(t *testing.T, pk *parker, backendID string, idle time.Duration) *parkPair {
	t.Helper()
	client, proxyClient := tcpPair(t)
	proxyBackend, backend := tcpPair(t)
	cfd, err := dupSocket(proxyClient)
	if err != nil {
		t.Fatal(err)
	}
	bfd, err := dupSocket(proxyBackend)
	if err != nil {
		t.Fatal(err)
	}
	proxyClient.Close()
	proxyBackend.Close()
	pp := &parkPair{client: client, backend: backend, entry: &tunnelEntry{backendID: backendID}}
	if err := pk.park(cfd, bfd, idle, pp.entry, nil); err != nil {
		t.Fatal(err)
	}
	return pp
}

// endLog records the tunnels the parker ended, and how often each.
type endLog struct {
	mu    sync.Mutex
	times map[*tunnelEntry]int
}

func (l *endLog) ended(e *tunnelEntry, _ *connHold) {
	l.mu.Lock()
	l.times[e]++
	l.mu.Unlock()
}

func (l *endLog) count(e *tunnelEntry) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.times[e]
}

func newTestParker(t *testing.T, sweep time.Duration) (*parker, *endLog) {
	t.Helper()
	log := &endLog{times: map[*tunnelEntry]int{}}
	pk, err := newParkerEvery(log.ended, sweep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pk.stop)
	return pk, log
}

func echo(t *testing.T, from, to *net.TCPConn, msg string) {
	t.Helper()
	if _, err := io.WriteString(from, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	to.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(to, got); err != nil || string(got) != msg {
		t.Fatalf("relayed %q %v, want %q", got, err, msg)
	}
}

// TestParkedRecordLifecycle follows one record: parked (a slot in the slab, both directions
// relayed, no Go connection left on the proxy's side), half-closed one way (the other still
// relays), ended when both sides closed (descriptors closed, bookkeeping run exactly once, slot
// freed), and its slot reused by the next tunnel under a new generation.
func TestParkedRecordLifecycle(t *testing.T) {
	pk, log := newTestParker(t, time.Hour)
	fds0 := openFDs(t)
	a := parkOne(t, pk, "b1", 0)
	if pk.len() != 1 {
		t.Fatalf("%d parked tunnels, want 1", pk.len())
	}
	// The proxy's side holds the two duplicated descriptors only; the test's peers hold 2 more.
	if got := openFDs(t) - fds0; got != 4 {
		t.Fatalf("%d descriptors opened for one parked tunnel (2 of them the test's), want 4", got)
	}
	echo(t, a.client, a.backend, "hello backend")
	echo(t, a.backend, a.client, "hello client")
	slot := uint32(0)
	r := pk.rec(slot)
	pk.mu.Lock()
	gen, entry := r.gen, r.entry
	pk.mu.Unlock()
	if entry != a.entry {
		t.Fatal("the tunnel is not in slot 0")
	}
	// Half-close from the client: the backend reads EOF, and can still answer.
	if err := a.client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	a.backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := a.backend.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("backend after the client's FIN: %d %v, want EOF", n, err)
	}
	echo(t, a.backend, a.client, "still there")
	if log.count(a.entry) != 0 || pk.len() != 1 {
		t.Fatal("a half-closed tunnel ended")
	}
	a.backend.Close()
	waitFor(t, func() bool { return log.count(a.entry) == 1 && pk.len() == 0 })
	a.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := a.client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("client after the backend closed: %d %v, want EOF", n, err)
	}
	pk.mu.Lock()
	freed := r.fd == [2]int32{-1, -1} && r.entry == nil && r.gen == gen+1
	pk.mu.Unlock()
	if !freed {
		t.Fatalf("slot after the end: fds %v, entry %v, gen %d (was %d)", r.fd, r.entry, r.gen, gen)
	}
	a.client.Close()
	if got := openFDs(t) - fds0; got > 0 {
		t.Fatalf("%d descriptors left after the tunnel ended", got)
	}
	// The freed slot serves the next tunnel (from the next poller batch on), one generation on.
	var b *parkPair
	pk.wake() // a poller batch hands the freed slot back
	waitFor(t, func() bool {
		pk.mu.Lock()
		defer pk.mu.Unlock()
		return len(pk.free) == parkChunk
	})
	b = parkOne(t, pk, "b1", 0)
	pk.mu.Lock()
	reused := r.entry == b.entry && r.gen == gen+1
	pk.mu.Unlock()
	if !reused {
		t.Fatal("the next tunnel did not reuse the freed slot")
	}
	echo(t, b.client, b.backend, "next")
	if log.count(a.entry) != 1 {
		t.Fatalf("the first tunnel's bookkeeping ran %d times, want once", log.count(a.entry))
	}
}

// TestParkedIdleSweep: a tunnel silent both ways for its idle timeout is closed by the sweep; a
// busy one is not.
func TestParkedIdleSweep(t *testing.T) {
	pk, log := newTestParker(t, 20*time.Millisecond)
	idle := parkOne(t, pk, "b1", 100*time.Millisecond)
	busy := parkOne(t, pk, "b1", 100*time.Millisecond)
	none := parkOne(t, pk, "b1", 0) // no idle timeout
	stop := time.Now().Add(400 * time.Millisecond)
	for time.Now().Before(stop) {
		echo(t, busy.client, busy.backend, "x")
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, func() bool { return log.count(idle.entry) == 1 })
	if log.count(busy.entry) != 0 || log.count(none.entry) != 0 {
		t.Fatal("the sweep closed a tunnel that was not idle past its timeout")
	}
	idle.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the idle tunnel's client: %v, want EOF", err)
	}
}

// TestParkedCloseRequests: drains close a backend's tunnels up to a limit, Shutdown closes the
// rest and refuses new ones; every tunnel's bookkeeping runs once.
func TestParkedCloseRequests(t *testing.T) {
	pk, log := newTestParker(t, time.Hour)
	a1, a2, b1 := parkOne(t, pk, "a", 0), parkOne(t, pk, "a", 0), parkOne(t, pk, "b", 0)
	if n := pk.closeBackend("a", 1); n != 1 {
		t.Fatalf("closeBackend(a, 1) closed %d", n)
	}
	if n := pk.closeBackend("a", 0); n != 1 {
		t.Fatalf("closeBackend(a, all) closed %d, want the other one", n)
	}
	if log.count(a1.entry) != 1 || log.count(a2.entry) != 1 || log.count(b1.entry) != 0 {
		t.Fatal("closeBackend closed the wrong tunnels")
	}
	echo(t, b1.client, b1.backend, "b lives")
	if n := pk.closeAll(); n != 1 || log.count(b1.entry) != 1 {
		t.Fatalf("closeAll closed %d", n)
	}
	c, s := tcpPair(t)
	fd, _ := dupSocket(s)
	fd2, _ := dupSocket(c)
	if err := pk.park(fd, fd2, 0, &tunnelEntry{}, nil); err == nil {
		t.Fatal("a tunnel was parked after closeAll")
	}
}

// TestParkedStalledWrites: a reader slower than its writer makes the relay stop reading that
// direction and resume on EPOLLOUT; every byte arrives, in order.
func TestParkedStalledWrites(t *testing.T) {
	pk, _ := newTestParker(t, time.Hour)
	p := parkOne(t, pk, "b1", 0)
	p.client.SetReadBuffer(16 << 10)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	go func() {
		p.backend.Write(data)
		p.backend.CloseWrite()
	}()
	got, err := io.ReadAll(p.client)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("relayed %d bytes (%v), want %d identical", len(got), err, len(data))
	}
}
