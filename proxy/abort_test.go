package proxy

import (
	"net"
	"strings"
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
