package sticky

import (
	"sync"
	"sync/atomic"
	"time"
)

// Order is the in-flight state of one session, kept in its table entry (so it ends with the
// session): the number of its polling POSTs and GETs in flight through this process, the one GET
// waiting for the POSTs, and whether a WebSocket tunnel of this process carries it. A drain uses the
// GET and tunnel counts to close a session only where it is held (the replica with its pending poll,
// or with its tunnel), so that replicas never close one session twice.
// A proxy serves one session's concurrent requests on different connections; an answer to a GET
// that overtakes the answer to the session's earlier POST (Engine.IO's CONNECT ack before the
// POST's "ok") makes socket.io-client's first emit wait for the next upgrade step. The GET's answer
// therefore waits, bounded, until the session's POSTs were answered. A nil *Order does nothing.
type Order struct {
	posts   atomic.Int32
	gets    atomic.Int32
	tunnels atomic.Int32
	waiter  atomic.Pointer[waiter]
}

// waiter is a waiting GET: a wake channel (buffered, so EndPost never blocks) and its timer,
// pooled so that a wait allocates nothing.
type waiter struct {
	ch chan struct{}
	t  *time.Timer
}

var waiters = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{ch: make(chan struct{}, 1), t: t}
}}

// BeginPost counts a POST of the session in flight; EndPost must follow, once.
func (o *Order) BeginPost() {
	if o != nil {
		o.posts.Add(1)
	}
}

// EndPost ends a POST counted by BeginPost (its answer was written, or will never be) and wakes a
// GET waiting for the session's POSTs when it was the last.
func (o *Order) EndPost() {
	if o == nil {
		return
	}
	if o.posts.Add(-1) == 0 {
		if w := o.waiter.Swap(nil); w != nil {
			w.ch <- struct{}{}
		}
	}
}

// PostsInFlight is the number of the session's POSTs counted and not ended.
func (o *Order) PostsInFlight() int {
	if o == nil {
		return 0
	}
	return int(o.posts.Load())
}

// AwaitPosts waits until no POST of the session is in flight, at most max, and reports whether it
// had to wait. One GET of a session waits at a time (Engine.IO allows one pending GET); a second
// concurrent one returns at once.
func (o *Order) AwaitPosts(max time.Duration) bool {
	if o == nil || o.posts.Load() == 0 {
		return false
	}
	w := waiters.Get().(*waiter)
	if !o.waiter.CompareAndSwap(nil, w) {
		waiters.Put(w)
		return false
	}
	if o.posts.Load() == 0 {
		// The last POST ended before it could see w: take w back, or take its wake.
		if !o.waiter.CompareAndSwap(w, nil) {
			<-w.ch
		}
		waiters.Put(w)
		return false
	}
	w.t.Reset(max)
	select {
	case <-w.ch:
	case <-w.t.C:
		if !o.waiter.CompareAndSwap(w, nil) {
			<-w.ch // an EndPost took w: its wake is on the way
		}
	}
	w.t.Stop()
	waiters.Put(w)
	return true
}

// BeginGet counts a polling GET of the session in flight (its answer not read yet); EndGet must
// follow, once.
func (o *Order) BeginGet() {
	if o != nil {
		o.gets.Add(1)
	}
}

// EndGet ends a GET counted by BeginGet.
func (o *Order) EndGet() {
	if o != nil {
		o.gets.Add(-1)
	}
}

// GetsInFlight is the number of the session's GETs counted and not ended: 1 while this process holds
// its pending long-poll.
func (o *Order) GetsInFlight() int {
	if o == nil {
		return 0
	}
	return int(o.gets.Load())
}

// TunnelOpened records that a WebSocket tunnel of this process carries the session (an upgrade);
// TunnelClosed must follow, once.
func (o *Order) TunnelOpened() {
	if o != nil {
		o.tunnels.Add(1)
	}
}

// TunnelClosed ends a tunnel recorded by TunnelOpened.
func (o *Order) TunnelClosed() {
	if o != nil {
		o.tunnels.Add(-1)
	}
}

// Tunnelled reports whether a tunnel of this process carries the session.
func (o *Order) Tunnelled() bool { return o != nil && o.tunnels.Load() > 0 }
