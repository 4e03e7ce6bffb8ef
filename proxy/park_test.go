//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// parkPair is a tunnel for the parker alone: two loopback TCP connections whose proxy-side ends
// are parked; the test holds the client's and the backend's ends.
type parkPair struct {
	client, backend *net.TCPConn // the peers' ends
	entry           *tunnelEntry
	parked          [2]string // the parked sockets, as /proc/self/fd names them ("socket:[inode]")
}

// fdName is what /proc/self/fd says descriptor fd is.
func fdName(t *testing.T, fd int) string {
	t.Helper()
	name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// heldParked counts the descriptors of /proc/self/fd that are parked sockets of pps (other tests'
// descriptors opening and closing meanwhile do not count).
func heldParked(t *testing.T, pps ...*parkPair) int {
	t.Helper()
	want := map[string]bool{}
	for _, pp := range pps {
		want[pp.parked[0]], want[pp.parked[1]] = true, true
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if name, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && want[name] {
			n++
		}
	}
	return n
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
	pp := &parkPair{client: client, backend: backend, entry: &tunnelEntry{backendID: backendID},
		parked: [2]string{fdName(t, cfd), fdName(t, bfd)}}
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
	a := parkOne(t, pk, "b1", 0)
	if pk.len() != 1 {
		t.Fatalf("%d parked tunnels, want 1", pk.len())
	}
	// The proxy's side holds the two duplicated descriptors only (Go's are closed).
	if got := heldParked(t, a); got != 2 {
		t.Fatalf("%d descriptors of the parked sockets open, want the parker's 2", got)
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
	// Half-close from the client right behind its last bytes: the backend reads them, then EOF,
	// and can still answer.
	if _, err := io.WriteString(a.client, "last words"); err != nil {
		t.Fatal(err)
	}
	if err := a.client.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	a.backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(a.backend); err != nil || string(got) != "last words" {
		t.Fatalf("backend after the client's FIN: %q %v, want the last words, then EOF", got, err)
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
	if got := heldParked(t, a); got != 0 {
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

// TestParkedIdleSweep: a tunnel silent both ways for its idle timeout is closed by the sweep (not
// before); one relaying all along, and one without an idle timeout, are not.
func TestParkedIdleSweep(t *testing.T) {
	pk, log := newTestParker(t, 20*time.Millisecond)
	const idleFor = 500 * time.Millisecond
	start := time.Now()
	idle := parkOne(t, pk, "b1", idleFor)
	busy := parkOne(t, pk, "b1", idleFor)
	none := parkOne(t, pk, "b1", 0)
	for log.count(idle.entry) == 0 {
		echo(t, busy.client, busy.backend, "x")
		if time.Since(start) > time.Minute {
			t.Fatal("the idle tunnel was not closed")
		}
	}
	if d := time.Since(start); d < idleFor {
		t.Fatalf("the idle tunnel was closed after %v, before its timeout", d)
	}
	if log.count(busy.entry) != 0 || log.count(none.entry) != 0 {
		t.Fatal("the sweep closed a tunnel that was not idle past its timeout")
	}
	idle.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.client.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the idle tunnel's client: %v, want EOF", err)
	}
	echo(t, none.backend, none.client, "still here")
}

// TestParkedCloseRequests: countBackend counts a backend's parked tunnels, closeBackend closes
// them up to a limit, closeAll closes the rest and refuses new ones; every tunnel's bookkeeping
// runs once and no descriptor is left behind.
func TestParkedCloseRequests(t *testing.T) {
	pk, log := newTestParker(t, time.Hour)
	pk.drainQuiet = 0 // a drain closes at once (TestParkedDrainWaitsForQuiet covers the wait)
	a1, a2, b1 := parkOne(t, pk, "a", 0), parkOne(t, pk, "a", 0), parkOne(t, pk, "b", 0)
	if got := heldParked(t, a1, a2, b1); got != 6 {
		t.Fatalf("%d descriptors for 3 parked tunnels, want 6", got)
	}
	if a, b, c := pk.countBackend("a"), pk.countBackend("b"), pk.countBackend("c"); a != 2 || b != 1 || c != 0 {
		t.Fatalf("countBackend: a %d, b %d, c %d; want 2, 1, 0", a, b, c)
	}
	if n := pk.closeBackend("a", 1); n != 1 || pk.countBackend("a") != 1 {
		t.Fatalf("closeBackend(a, 1) closed %d, %d left", n, pk.countBackend("a"))
	}
	if n := pk.closeBackend("a", 0); n != 1 || pk.countBackend("a") != 0 {
		t.Fatalf("closeBackend(a, all) closed %d, want the other one", n)
	}
	if got := heldParked(t, a1, a2); got != 0 {
		t.Fatalf("%d descriptors left by closeBackend", got)
	}
	if log.count(a1.entry) != 1 || log.count(a2.entry) != 1 || log.count(b1.entry) != 0 {
		t.Fatal("closeBackend closed the wrong tunnels")
	}
	for _, pp := range []*parkPair{a1, a2} {
		pp.client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := pp.client.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a closed tunnel's client reads %v, want EOF", err)
		}
	}
	echo(t, b1.client, b1.backend, "b lives")
	if n := pk.closeAll(); n != 1 || log.count(b1.entry) != 1 || pk.len() != 0 || pk.countBackend("b") != 0 {
		t.Fatalf("closeAll closed %d, %d left", n, pk.len())
	}
	if got := heldParked(t, a1, a2, b1); got != 0 {
		t.Fatalf("%d descriptors left after closeAll", got)
	}
	c, s := tcpPair(t)
	fd, _ := dupSocket(s)
	fd2, _ := dupSocket(c)
	if err := pk.park(fd, fd2, 0, &tunnelEntry{}, nil); err == nil {
		t.Fatal("a tunnel was parked after closeAll")
	}
	syscall.Close(fd)
	syscall.Close(fd2)
}

// TestParkedStop: stop closes the tunnels still parked, then the poller's own descriptors; later
// requests and a second stop do nothing.
func TestParkedStop(t *testing.T) {
	log := &endLog{times: map[*tunnelEntry]int{}}
	pk, err := newParkerEvery(log.ended, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	own := &parkPair{parked: [2]string{fdName(t, pk.epfd), fdName(t, pk.evfd)}}
	a, b := parkOne(t, pk, "a", 0), parkOne(t, pk, "a", time.Hour)
	echo(t, a.client, a.backend, "up")
	pk.stop()
	if log.count(a.entry) != 1 || log.count(b.entry) != 1 || pk.len() != 0 {
		t.Fatal("stop did not close the parked tunnels once each")
	}
	if got := heldParked(t, a, b); got != 0 {
		t.Fatalf("%d tunnel descriptors left after stop", got)
	}
	// An epoll set and an eventfd are named by their type, not an inode: count the poller's own by
	// their numbers instead (no other descriptor has them until they are closed).
	for _, fd := range []int{pk.epfd, pk.evfd} {
		if name, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil && (name == own.parked[0] || name == own.parked[1]) {
			t.Fatalf("the poller's descriptor %d (%s) is still open after stop", fd, name)
		}
	}
	if n := pk.closeBackend("a", 0); n != 0 {
		t.Fatalf("closeBackend after stop closed %d", n)
	}
	pk.stop()
}

// TestParkedReset: a reset from one side ends the tunnel: the other side sees it closed, the
// descriptors are closed and the bookkeeping runs once.
func TestParkedReset(t *testing.T) {
	pk, log := newTestParker(t, time.Hour)
	p := parkOne(t, pk, "a", 0)
	echo(t, p.backend, p.client, "hi")
	p.client.SetLinger(0)
	p.client.Close() // RST
	p.backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(p.backend); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the backend's side stayed open after the client's reset")
		}
	}
	waitFor(t, func() bool { return log.count(p.entry) == 1 && pk.len() == 0 })
	if got := heldParked(t, p); got != 0 {
		t.Fatalf("%d descriptors left after the reset", got)
	}
}

// TestParkedStalledWrites: a reader that stops reading stalls its direction: the relay keeps the
// unwritten bytes, stops reading that source (backpressure) and goes on relaying the other
// direction and other tunnels; once the reader reads again every byte arrives, in order.
func TestParkedStalledWrites(t *testing.T) {
	pk, log := newTestParker(t, time.Hour)
	p := parkOne(t, pk, "b1", 0)
	other := parkOne(t, pk, "b1", 0)
	p.client.SetReadBuffer(16 << 10)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<21) // 32 MiB: more than the sockets buffer
	wrote := make(chan error, 1)
	go func() {
		_, err := p.backend.Write(data)
		if err == nil {
			err = p.backend.CloseWrite()
		}
		wrote <- err
	}()
	waitFor(t, func() bool { return pk.nstalled.Load() == 1 })
	select {
	case err := <-wrote:
		t.Fatalf("the backend wrote everything to a reader that reads nothing (%v)", err)
	default:
	}
	echo(t, p.client, p.backend, "the other way")
	echo(t, other.client, other.backend, "another tunnel")
	echo(t, other.backend, other.client, "another tunnel back")
	got, err := io.ReadAll(p.client)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("relayed %d bytes (%v), want %d identical", len(got), err, len(data))
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if pk.nstalled.Load() != 0 {
		t.Fatalf("%d directions still stalled", pk.nstalled.Load())
	}
	p.client.Close()
	p.backend.Close()
	waitFor(t, func() bool { return log.count(p.entry) == 1 && heldParked(t, p) == 0 })
	// A tunnel closed with bytes stalled gives its buffer back and leaves no descriptor.
	go other.backend.Write(data)
	waitFor(t, func() bool { return pk.nstalled.Load() == 1 })
	if n := pk.closeAll(); n != 1 || pk.nstalled.Load() != 0 {
		t.Fatalf("closeAll closed %d, %d directions stalled", n, pk.nstalled.Load())
	}
	if got := heldParked(t, other); got != 0 {
		t.Fatalf("%d descriptors left", got)
	}
}

// countBackend counts the parked tunnels of a backend (tests; the proxy reads its ledger's counts).
func (pk *parker) countBackend(id string) int {
	n := 0
	pk.mu.Lock()
	for _, c := range *pk.chunks.Load() {
		for i := range c {
			if r := &c[i]; r.fd[0] >= 0 && r.entry != nil && r.entry.backendID == id {
				n++
			}
		}
	}
	pk.mu.Unlock()
	return n
}

// TestParkedDrainWaitsForQuiet: a drain closes a parked tunnel once it has relayed nothing for
// drainQuiet (an ack on its way back is not cut off), passes over one that keeps relaying, and
// closes that one too once drainWait has passed since it was first passed over.
func TestParkedDrainWaitsForQuiet(t *testing.T) {
	pk, log := newTestParker(t, time.Hour)
	pk.drainQuiet, pk.drainWait = int64(100*time.Millisecond), int64(800*time.Millisecond)
	busy, quiet := parkOne(t, pk, "a", 0), parkOne(t, pk, "a", 0)
	first := time.Now()
	if n := pk.closeBackend("a", 0); n != 0 {
		t.Fatalf("a drain closed %d tunnels parked just now (busy until drainQuiet)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for log.count(quiet.entry) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the quiet tunnel was not closed by drains within 10 s")
		}
		echo(t, busy.client, busy.backend, "x") // keeps relaying
		pk.closeBackend("a", 0)
	}
	if log.count(busy.entry) != 0 && time.Since(first) < 800*time.Millisecond {
		t.Fatal("a drain closed the tunnel that kept relaying before drainWait")
	}
	for log.count(busy.entry) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the busy tunnel was not closed within 10 s of drains (drainWait bounds the wait)")
		}
		echo(t, busy.client, busy.backend, "x")
		pk.closeBackend("a", 0)
	}
	if d := time.Since(first); d < 800*time.Millisecond {
		t.Fatalf("the tunnel that kept relaying was closed %v after the first drain, before drainWait", d)
	}
	if got := heldParked(t, busy, quiet); got != 0 {
		t.Fatalf("%d descriptors left by the drains", got)
	}
}
