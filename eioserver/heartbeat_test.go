package eioserver

import (
	"sync"
	"testing"
	"time"

	"sioproxy/eioproto"
)

// manualClock records scheduled heartbeat callbacks; tests fire them by hand.
type manualClock struct {
	mu     sync.Mutex
	timers []*manualTimer
}

type manualTimer struct {
	d       time.Duration
	f       func()
	stopped bool
}

func (t *manualTimer) Stop() bool { t.stopped = true; return true }

func (c *manualClock) afterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{d: d, f: f}
	c.timers = append(c.timers, t)
	return t
}

// fire runs the latest timer and returns its duration.
func (c *manualClock) fire(t *testing.T) time.Duration {
	t.Helper()
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		t.Fatal("no timer scheduled")
	}
	tm := c.timers[len(c.timers)-1]
	c.mu.Unlock()
	if tm.stopped {
		t.Fatal("latest timer is stopped")
	}
	tm.f()
	return tm.d
}

func TestHeartbeat(t *testing.T) {
	clock := &manualClock{}
	w := make(closeWatcher, 8)
	srv := New(Options{PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second})
	srv.afterFunc = clock.afterFunc
	w.watch(srv)
	s := newSession(srv, transportPolling)
	srv.addSession(s)
	s.startHeartbeat()

	queued := func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return string(eioproto.AppendPayloadV4(nil, s.queue))
	}
	if d := clock.fire(t); d != 25*time.Second || queued() != "2" {
		t.Fatalf("after pingInterval (%v) queue %q, want a ping", d, queued())
	}
	s.handlePacket(eioproto.Packet{Type: eioproto.PacketPong})
	// A stale callback (the pingTimeout timer that the pong replaced) does nothing.
	clock.timers[len(clock.timers)-2].f()
	if srv.Sessions() != 1 {
		t.Fatal("stale heartbeat closed the session")
	}
	if d := clock.fire(t); d != 25*time.Second || queued() != "2\x1e2" {
		t.Fatalf("second ping after %v, queue %q", d, queued())
	}
	if d := clock.fire(t); d != 20*time.Second {
		t.Fatalf("timeout after %v, want pingTimeout", d)
	}
	if reason := w.expect(t, s.id); reason != "ping timeout" || srv.Sessions() != 0 {
		t.Fatalf("reason %q, sessions %d", reason, srv.Sessions())
	}
}
