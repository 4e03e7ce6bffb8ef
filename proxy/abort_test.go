package proxy

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sioproxy/balancer"
)

// A client that goes away is propagated (issue 10, point 6): the backend's pending request ends
// within a second, as behind nginx, so engine.io closes that transport.

func TestClientAbortEndsThePendingPoll(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if r.query().Get("sid") != "" {
			return rawAnswer{Hang: true}
		}
		return eioRaw(r)
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	for _, reset := range []bool{false, true} {
		rc := dialRaw(t, p.addr)
		before := rb.nreq.Load()
		rc.send("GET /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n\r\n")
		waitFor(t, func() bool { return rb.nreq.Load() > before })
		if reset {
			rc.c.(*net.TCPConn).SetLinger(0)
		}
		gone := time.Now()
		rc.c.Close()
		select {
		case r := <-rb.closed:
			if d := r.closedAt.Sub(gone); d > time.Second {
				t.Errorf("reset %v: the backend's request ended %v after the client left", reset, d)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("reset %v: the backend's request is still open 3s after the client left", reset)
		}
	}
	if f := p.bal.Stats("raw").Failures.Load(); f != 0 {
		t.Errorf("an abort counted as a backend failure (%d)", f)
	}
}

func TestManyAbortsLeaveNoWatchBehind(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if r.query().Get("sid") != "" {
			return rawAnswer{Hang: true}
		}
		return eioRaw(r)
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	const n = 100
	conns := make([]*rawClient, n)
	for i := range conns {
		conns[i] = dialRaw(t, p.addr)
		conns[i].send("GET /socket.io/?EIO=4&transport=polling&sid=" + sid + "&i=" + strings.Repeat("x", i%7) + " HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	waitFor(t, func() bool { return rb.nreq.Load() >= n+1 })
	for _, rc := range conns {
		rc.c.Close()
	}
	deadline := time.After(5 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-rb.closed:
		case <-deadline:
			t.Fatalf("%d of %d aborted polls still open at the backend", n-i, n)
		}
	}
	waitFor(t, func() bool { return p.abortWatches() == 0 && p.watchedConns() == 0 })
}

// TestAbortWatchOfAKeptAliveConnection: the watch of a connection stays registered between its
// requests (arming is one EPOLL_CTL_MOD, disarming costs nothing). Polls answered after the watch
// was armed leave no armed watch, and a hang-up that came while the connection was disarmed (the
// client's FIN sent with its next poll) is still reported once that poll is armed.
func TestAbortWatchOfAKeptAliveConnection(t *testing.T) {
	var polls atomic.Int64
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if r.query().Get("sid") == "" {
			return eioRaw(r)
		}
		if polls.Add(1) <= 3 {
			a := eioRaw(r)
			a.Delay = 4 * armDelay // answered after the watch was armed
			return a
		}
		return rawAnswer{Hang: true}
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	rc := dialRaw(t, p.addr)
	for i := 0; i < 3; i++ {
		rc.send("GET /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := rc.read(3*time.Second, false); r.Status != 200 || r.Body != "4hello" {
			t.Fatalf("poll %d: %d %q", i+1, r.Status, r.Body)
		}
		if n := p.abortWatches(); n != 0 {
			t.Fatalf("poll %d answered: %d watches still armed", i+1, n)
		}
	}
	if n := p.watchedConns(); n != 1 {
		t.Fatalf("%d connections with a watch state, want 1 (one per connection, kept between its requests)", n)
	}
	before := rb.nreq.Load()
	rc.send("GET /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\n\r\n")
	rc.c.(*net.TCPConn).CloseWrite() // the FIN follows the request at once: before the watch is armed
	gone := time.Now()
	waitFor(t, func() bool { return rb.nreq.Load() > before })
	select {
	case r := <-rb.closed:
		if d := r.closedAt.Sub(gone); d > time.Second {
			t.Errorf("the backend's request ended %v after the client's FIN", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the backend's request is still open 3s after the client's FIN (a hang-up before arming was lost)")
	}
	waitFor(t, func() bool { return p.abortWatches() == 0 })
	if f := p.bal.Stats("raw").Failures.Load(); f != 0 {
		t.Errorf("an abort counted as a backend failure (%d)", f)
	}
}
