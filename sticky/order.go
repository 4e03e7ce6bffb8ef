package sticky

import (
	"sync"
	"sync/atomic"
	"time"
)

// Order is the in-flight state of one session, kept in its table entry (so it ends with the
// session): its polling POSTs in flight, those of them not yet sent to the backend, its polling
// GETs in flight, the one GET waiting for the POSTs, and whether a WebSocket tunnel of this process
// carries it.
//
// A proxy serves one session's concurrent requests on different connections and goroutines, and
// Go's scheduler may run the later one first. A GET that reaches the backend before the session's
// POST, or whose answer (Engine.IO's CONNECT ack) reaches the client before the POST's "ok", makes
// socket.io-client's first emit wait for the next upgrade step (100 ms or more). So a GET waits,
// bounded, before it is sent for the session's POSTs that are not sent yet, and before its answer is
// written for the POSTs not answered yet.
//
// A drain uses the GET and tunnel counts to close a session only where it is held (the replica with
// its pending poll, or with its tunnel), so that replicas never close one session twice. A nil
// *Order does nothing.
type Order struct {
	posts   atomic.Int32 // POSTs in flight (BeginPost .. EndPost)
	unsent  atomic.Int32 // of which not sent to the backend yet (BeginPost .. Sent)
	gets    atomic.Int32 // GETs in flight (BeginGet .. EndGet)
	tunnels atomic.Int32 // tunnels of this process carrying the session
	waiter  atomic.Pointer[waiter]
}

// waiter is a waiting GET: a wake channel (buffered, so a wake never blocks) and its timer, pooled
// so that a wait allocates nothing.
type waiter struct {
	ch chan struct{}
	t  *time.Timer
}

var waiters = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{ch: make(chan struct{}, 1), t: t}
}}

// BeginPost counts a POST of the session in flight and not sent yet; Sent and EndPost must follow,
// once each.
func (o *Order) BeginPost() {
	if o != nil {
		o.posts.Add(1)
		o.unsent.Add(1)
	}
}

// Sent marks a POST counted by BeginPost as sent to the backend (or as never to be sent).
func (o *Order) Sent() {
	if o != nil && o.unsent.Add(-1) == 0 {
		o.wake()
	}
}

// EndPost ends a POST counted by BeginPost: its answer was written, or will never be.
func (o *Order) EndPost() {
	if o != nil && o.posts.Add(-1) == 0 {
		o.wake()
	}
}

func (o *Order) wake() {
	if w := o.waiter.Swap(nil); w != nil {
		w.ch <- struct{}{}
	}
}

// PostsInFlight is the number of the session's POSTs counted and not ended.
func (o *Order) PostsInFlight() int {
	if o == nil {
		return 0
	}
	return int(o.posts.Load())
}

// Waiting reports whether a GET of the session waits (tests).
func (o *Order) Waiting() bool { return o != nil && o.waiter.Load() != nil }

// AwaitSent waits until every POST of the session in flight was sent to its backend, at most max,
// and reports whether it had to wait (a GET, before it is sent).
func (o *Order) AwaitSent(max time.Duration) bool {
	if o == nil || o.unsent.Load() == 0 {
		return false
	}
	return o.await(&o.unsent, max)
}

// AwaitPosts waits until no POST of the session is in flight, at most max, and reports whether it
// had to wait (a GET, before its answer is written).
func (o *Order) AwaitPosts(max time.Duration) bool {
	if o == nil || o.posts.Load() == 0 {
		return false
	}
	return o.await(&o.posts, max)
}

// await waits until *n is 0, at most max, and reports whether it waited. One GET of a session
// waits at a time (Engine.IO allows one pending GET); a second concurrent one returns at once.
func (o *Order) await(n *atomic.Int32, max time.Duration) bool {
	w := waiters.Get().(*waiter)
	defer waiters.Put(w)
	var deadline time.Time // set once the wait began (its timer runs)
	waited := func() bool {
		if deadline.IsZero() {
			return false
		}
		w.t.Stop()
		return true
	}
	for {
		if !o.waiter.CompareAndSwap(nil, w) {
			return waited() // another GET waits
		}
		if n.Load() == 0 {
			// The count reached 0 before its wake could see w: take w back, or take the wake.
			if !o.waiter.CompareAndSwap(w, nil) {
				<-w.ch
			}
			return waited()
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(max)
			w.t.Reset(max)
		}
		select {
		case <-w.ch: // a wake of either count (it took w): look again
			if n.Load() != 0 && time.Now().Before(deadline) {
				continue
			}
		case <-w.t.C:
			if !o.waiter.CompareAndSwap(w, nil) {
				<-w.ch // a wake took w: it is on the way
			}
		}
		return waited()
	}
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
