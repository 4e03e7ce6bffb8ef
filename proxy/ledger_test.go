package proxy

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// fakeClock is a settable clock for the session table's expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startClockedProxy is startProxy with an injected clock.
func startClockedProxy(t *testing.T, clk *fakeClock, specs []balancer.Spec) *testProxy {
	t.Helper()
	return startProxyOpts(t, nil, specs, WithClock(clk.Now))
}

// counts returns the Sessions and Tunnels counters of a backend.
func counts(p *testProxy, id string) (sessions, tunnels int64) {
	st := p.bal.Stats(id)
	if st == nil {
		return 0, 0
	}
	return st.Sessions.Load(), st.Tunnels.Load()
}

func wantCounts(t *testing.T, p *testProxy, id string, sessions, tunnels int64, when string) {
	t.Helper()
	ok := eventually(func() bool {
		s, tu := counts(p, id)
		return s == sessions && tu == tunnels
	})
	if !ok {
		s, tu := counts(p, id)
		t.Fatalf("%s: backend %s has %d sessions, %d tunnels; want %d, %d (table %d)", when, id, s, tu, sessions, tunnels, p.Table().Len())
	}
}

// forgedSID is a sid with a valid tag and check character for tag, and a random rest: what anyone
// can build (the check character is no secret).
func forgedSID(tag string) string {
	raw := fmt.Sprintf("forged%014d", rand.Int64N(1e14))
	return string(sticky.AppendTagged(nil, tag, []byte(raw)))
}

func TestForgedSIDsCreateNoSession(t *testing.T) {
	b1, b2 := startBackend(t, "f1"), startBackend(t, "f2")
	p := startProxy(t, nil, specsOf(b1, b2))
	live := handshake(t, p.addr) // one real session, so the counters have something to keep
	owner := p.bal.Snapshot().ByTag([]byte(live[:sticky.TagLen]))
	tag := owner.Tag
	paths := []string{
		"/socket.io/?EIO=4&transport=polling&t=z&sid=",
		"/socket.io/socket.io.js?sid=", // socket.io answers 200 with its client bundle, sid or not
		"/socket.io/socket.io.js?EIO=4&transport=polling&sid=",
	}
	for i := 0; i < 1000; i++ {
		path := paths[i%len(paths)]
		code, _, _ := get(t, "http://"+p.addr+path+forgedSID(tag))
		if path == paths[0] && code != 400 {
			t.Fatalf("forged sid poll: %d, want 400 (Session ID unknown)", code)
		}
	}
	if code, _ := post(t, pollURL(p.addr, forgedSID(tag)), "40"); code != 400 {
		t.Fatalf("forged sid POST: %d, want 400", code)
	}
	wantCounts(t, p, owner.ID, 1, 0, "after 1,000 forged sids")
	if n := p.Table().Len(); n != 1 {
		t.Fatalf("table has %d entries after forged sids, want 1", n)
	}
	if code, _ := post(t, pollURL(p.addr, live), "1"); code != 200 {
		t.Fatal(code)
	}
	wantCounts(t, p, owner.ID, 0, 0, "after the real session closed")
}

func TestForgedSIDUpgradeCreatesNoSession(t *testing.T) {
	b := startBackend(t, "fu")
	p := startProxy(t, nil, specsOf(b))
	tag := p.bal.Snapshot().ByID(b.url()).Tag
	for i := 0; i < 50; i++ {
		_, resp, err := websocket.DefaultDialer.Dial(wsURL(p.addr, "&sid="+forgedSID(tag)), nil)
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Fatalf("forged sid upgrade: %v %v", err, resp)
		}
	}
	wantCounts(t, p, b.url(), 0, 0, "after forged upgrades")
}

// A session whose requests alternate between two replicas counts once on each replica that saw a
// successful request, and both counts return to exactly 0 once it ends (the replica that did not see
// the close packet forgets it after its TTL).
func TestCountsAcrossReplicasReturnToZero(t *testing.T) {
	b1, b2 := startBackend(t, "r1"), startBackend(t, "r2")
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	pa := startClockedProxy(t, clk, specsOf(b1, b2))
	pb := startClockedProxy(t, clk, specsOf(b1, b2))
	var sids []string
	for i := 0; i < 20; i++ {
		sid := handshake(t, pa.addr)
		for j, addr := range []string{pb.addr, pa.addr, pb.addr, pb.addr} {
			if code, _, body := get(t, pollURL(addr, sid)); code != 200 {
				t.Fatalf("session %d request %d: %d %s", i, j, code, body)
			}
		}
		sids = append(sids, sid)
	}
	total := func(p *testProxy) int64 {
		a, _ := counts(p, b1.url())
		b, _ := counts(p, b2.url())
		return a + b
	}
	if a, b := total(pa), total(pb); a != 20 || b != 20 {
		t.Fatalf("live: replica A counts %d, replica B %d; want 20 each", a, b)
	}
	for i, sid := range sids { // half the closes through each replica
		addr := pa.addr
		if i%2 == 1 {
			addr = pb.addr
		}
		if code, _ := post(t, pollURL(addr, sid), "1"); code != 200 {
			t.Fatalf("close %d: %d", i, code)
		}
	}
	if a, b := total(pa), total(pb); a != 10 || b != 10 {
		t.Fatalf("after the closes: replica A counts %d, replica B %d; want 10 each (the others' closes are not seen yet)", a, b)
	}
	clk.Advance(2 * time.Minute) // past every TTL
	pa.Table().Sweep()
	pb.Table().Sweep()
	if a, b := total(pa), total(pb); a != 0 || b != 0 {
		t.Fatalf("after the TTL: replica A counts %d, replica B %d; want 0", a, b)
	}
}

// A proxy started in the middle of sessions (a restart) routes them by tag, counts each once when its
// backend answers, and ends them with their close packets.
func TestCountsAfterRestart(t *testing.T) {
	b := startBackend(t, "rs")
	old := startProxy(t, nil, specsOf(b))
	var sids []string
	for i := 0; i < 10; i++ {
		sids = append(sids, handshake(t, old.addr))
	}
	fresh := startProxy(t, nil, specsOf(b))
	for _, sid := range sids {
		for j := 0; j < 3; j++ {
			if code, _, body := get(t, pollURL(fresh.addr, sid)); code != 200 {
				t.Fatalf("poll through the new process: %d %s", code, body)
			}
		}
	}
	wantCounts(t, fresh, b.url(), 10, 0, "new process, sessions adopted")
	for _, sid := range sids {
		if code, _ := post(t, pollURL(fresh.addr, sid), "1"); code != 200 {
			t.Fatal(code)
		}
	}
	wantCounts(t, fresh, b.url(), 0, 0, "new process, sessions closed")
}

func TestWebSocketOnlyCountsReturnToZero(t *testing.T) {
	b := startBackend(t, "ws")
	p := startProxy(t, nil, specsOf(b))
	var conns []*websocket.Conn
	for i := 0; i < 10; i++ {
		c, _, err := websocket.DefaultDialer.Dial(wsURL(p.addr, ""), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	wantCounts(t, p, b.url(), 10, 10, "10 WebSocket-only sessions")
	for _, c := range conns {
		c.Close()
	}
	wantCounts(t, p, b.url(), 0, 0, "after they closed")
}

func TestOwnerGoneEndsItsSessions(t *testing.T) {
	b1, b2 := startBackend(t, "g1"), startBackend(t, "g2")
	p := startProxy(t, func(s *Settings) { s.TagSIDs = false }, specsOf(b1, b2)) // untagged: the table routes
	var sids []string
	for i := 0; i < 10; i++ {
		sids = append(sids, handshake(t, p.addr))
	}
	p.bal.Update(specsOf(b2)) // b1 leaves the snapshot
	for _, sid := range sids {
		get(t, pollURL(p.addr, sid))
	}
	wantCounts(t, p, b1.url(), 0, 0, "after its owner left")
	if n, want := p.Table().Len(), p.Table().Count(b2.url()); n != want {
		t.Fatalf("table has %d entries, %d of them on the remaining backend", n, want)
	}
}

// A reload of the pool settings reaches the pools of backends that already have one; the upstream
// timeout is read per request.
func TestApplyReachesExistingPools(t *testing.T) {
	b := startBackend(t, "ap")
	p := startProxy(t, nil, specsOf(b))
	handshake(t, p.addr)
	be := p.bal.Snapshot().ByID(b.url())
	before := p.upstream(be, p.rt.Load())
	s := p.rt.Load().Settings
	s.DialTimeout = 2 * time.Second
	s.MaxConnsPerBackend = 77
	p.Apply(s)
	after := p.upstream(be, p.rt.Load())
	if after == before || after.dialTimeout != 2*time.Second || after.maxConns != 77 {
		t.Fatalf("after Apply the backend's pool has dial timeout %v, max conns %d (new pool: %v)", after.dialTimeout, after.maxConns, after != before)
	}
	s.TunnelIdleTimeout = 2 * time.Minute // not a pool setting: the pool stays
	s.UpstreamTimeout = 123 * time.Second
	p.Apply(s)
	if p.upstream(be, p.rt.Load()) != after {
		t.Fatal("Apply of a non-pool setting replaced the pool")
	}
	handshake(t, p.addr)
}

// Apply while requests are served, under the race detector (it used to write the server's body limit
// while connections read it).
func TestApplyWhileServing(t *testing.T) {
	b := startBackend(t, "race")
	p := startProxy(t, nil, specsOf(b))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := p.rt.Load().Settings
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.MaxBodyBytes = 1000 + i%2
			p.Apply(s)
		}
	}()
	for i := 0; i < 30; i++ {
		sid := handshake(t, p.addr)
		if code, _ := post(t, pollURL(p.addr, sid), "40"); code != 200 {
			t.Fatalf("POST while applying: %d", code)
		}
	}
	close(stop)
	<-done
	s := p.rt.Load().Settings
	s.MaxBodyBytes = 10
	p.Apply(s)
	sid := handshake(t, p.addr)
	if code, _ := post(t, pollURL(p.addr, sid), "4"+string(make([]byte, 20))); code != 413 {
		t.Fatalf("body over the reloaded limit: %d, want 413", code)
	}
}

// A close packet in a compressed poll answer ends the session too (engine.io compresses answers of
// 1 KiB and more for clients that accept it).
func TestCompressedCloseEndsTheSession(t *testing.T) {
	b := startBackend(t, "gz")
	p := startProxy(t, nil, specsOf(b))
	sid := handshake(t, p.addr)
	wantCounts(t, p, b.url(), 1, 0, "after the handshake")
	b.closeGzip.Store(true)
	if code, _, _ := get(t, pollURL(p.addr, sid), "Accept-Encoding", "gzip"); code != 200 {
		t.Fatalf("poll: %d", code)
	}
	wantCounts(t, p, b.url(), 0, 0, "after a gzipped close packet")
}

// With two replicas, a drain deadline closes each session once: at the replica that holds its
// pending poll. A replica that only saw some of a session's earlier requests leaves it to the other,
// and an upgraded session is closed by closing its tunnel, never with a poll (which the backend would
// refuse).
func TestDrainAcrossReplicasClosesEachSessionOnce(t *testing.T) {
	b := startBackend(t, "dr")
	pa := startProxy(t, nil, specsOf(b))
	pb := startProxy(t, nil, specsOf(b))
	var sids []string
	for i := 0; i < 8; i++ {
		sid := handshake(t, pa.addr)
		// Both replicas know the session (B adopts it from a poll it served).
		for _, addr := range []string{pb.addr, pa.addr} {
			if code, _, _ := get(t, pollURL(addr, sid)); code != 200 {
				t.Fatalf("poll: %d", code)
			}
		}
		sids = append(sids, sid)
	}
	b.holdPolls.Store(true)
	done := make(chan string, len(sids))
	for i, sid := range sids { // each session's pending poll is held by one replica
		addr := pa.addr
		if i%2 == 1 {
			addr = pb.addr
		}
		go func() {
			_, _, body := get(t, pollURL(addr, sid))
			done <- body
		}()
	}
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.held) == len(sids) })
	for round := 0; round < 20; round++ {
		pa.CloseSessions(b.url(), 1)
		pb.CloseSessions(b.url(), 1)
	}
	for range sids {
		if body := <-done; body != "1" {
			t.Errorf("a pending poll was answered %q, want the close packet", body)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sid := range sids {
		_, raw, _ := sticky.SplitTagged([]byte(sid))
		if n := b.closes[string(raw)]; n != 1 {
			t.Errorf("session closed %d times at the backend, want once", n)
		}
	}
	if n := b.closes["?unknown"]; n != 0 {
		t.Errorf("%d closes posted for sessions the backend no longer knew (closed twice)", n)
	}
}
