package sticky

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOrderAwaitWithoutPostsReturnsAtOnce(t *testing.T) {
	var o Order
	if o.AwaitPosts(time.Hour) {
		t.Fatal("AwaitPosts waited with no POST in flight")
	}
	var nilOrder *Order
	nilOrder.BeginPost()
	nilOrder.EndPost()
	if nilOrder.AwaitPosts(time.Hour) || nilOrder.PostsInFlight() != 0 {
		t.Fatal("a nil Order is not a no-op")
	}
}

// TestOrderAwaitWakesOnLastPost: a waiting GET returns when the last of the session's POSTs ends,
// not before, and long before its bound.
func TestOrderAwaitWakesOnLastPost(t *testing.T) {
	var o Order
	o.BeginPost()
	o.BeginPost()
	var ended atomic.Int32
	done := make(chan int32, 1)
	go func() {
		o.AwaitPosts(time.Minute)
		done <- ended.Load()
	}()
	waitUntil(t, func() bool { return o.waiter.Load() != nil })
	ended.Store(1)
	o.EndPost()
	ended.Store(2)
	o.EndPost()
	select {
	case n := <-done:
		if n != 2 {
			t.Fatalf("AwaitPosts returned after %d of 2 POSTs ended", n)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("AwaitPosts did not return when the last POST ended")
	}
	if o.waiter.Load() != nil || o.PostsInFlight() != 0 {
		t.Fatalf("left behind: waiter %v, posts %d", o.waiter.Load(), o.PostsInFlight())
	}
}

// TestOrderAwaitIsBounded: a POST that never ends holds a GET for the bound only, and leaves no
// waiter behind.
func TestOrderAwaitIsBounded(t *testing.T) {
	var o Order
	o.BeginPost()
	start := time.Now()
	if !o.AwaitPosts(5 * time.Millisecond) {
		t.Fatal("AwaitPosts did not wait for the POST in flight")
	}
	if d := time.Since(start); d < 5*time.Millisecond {
		t.Fatalf("AwaitPosts returned after %v, before its bound of 5ms", d)
	}
	if o.waiter.Load() != nil {
		t.Fatal("a timed-out wait left its waiter in the Order")
	}
	o.EndPost() // no one waits: nothing to wake, nothing blocks
	if o.AwaitPosts(time.Hour) {
		t.Fatal("AwaitPosts waited after the POST ended")
	}
}

// TestOrderConcurrent runs POSTs and GETs of one session at once (run with -race): every wait
// ends, and the Order returns to its zero state.
func TestOrderConcurrent(t *testing.T) {
	var o Order
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			for j := 0; j < 2000; j++ {
				o.BeginPost()
				if j%7 == 0 {
					runtime.Gosched()
				}
				o.EndPost()
			}
		})
	}
	for i := 0; i < 3; i++ {
		wg.Go(func() {
			for j := 0; j < 2000; j++ {
				o.AwaitPosts(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if o.PostsInFlight() != 0 || o.waiter.Load() != nil {
		t.Fatalf("after the run: posts %d, waiter %v", o.PostsInFlight(), o.waiter.Load())
	}
}

// TestOrderLivesInTheEntry: the ordering state is the session's own; it ends with the entry and a
// new session of the same sid starts afresh.
func TestOrderLivesInTheEntry(t *testing.T) {
	tb := NewTable(nil, nil)
	if _, o, ok := tb.Lookup([]byte("s1")); ok || o != nil {
		t.Fatal("Lookup of an unknown sid returned ordering state")
	}
	tb.PutIfAbsent("s1", "b1", time.Minute)
	_, o1, ok := tb.Lookup([]byte("s1"))
	if !ok || o1 == nil {
		t.Fatal("no ordering state for a known session")
	}
	o1.BeginPost()
	if _, again, _ := tb.Lookup([]byte("s1")); again != o1 || again.PostsInFlight() != 1 {
		t.Fatal("two lookups of one session see different ordering state")
	}
	tb.Delete([]byte("s1"))
	tb.PutIfAbsent("s1", "b1", time.Minute)
	_, o2, _ := tb.Lookup([]byte("s1"))
	if o2 == o1 || o2.PostsInFlight() != 0 {
		t.Fatal("a new session inherited the ended session's ordering state")
	}
	o1.EndPost() // the POST of the ended session finishes: harmless
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOrderAwaitSent: a GET waiting for the session's POSTs to be sent goes when the last is sent,
// though they are still in flight; waiting for their answers then goes on until they end.
func TestOrderAwaitSent(t *testing.T) {
	var o Order
	o.BeginPost()
	done := make(chan bool, 1)
	go func() { done <- o.AwaitSent(time.Minute) }()
	waitUntil(t, o.Waiting)
	o.Sent()
	select {
	case waited := <-done:
		if !waited {
			t.Fatal("AwaitSent reported no wait")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("AwaitSent did not return when the POST was sent")
	}
	if o.AwaitSent(time.Hour) {
		t.Fatal("AwaitSent waited with every POST sent")
	}
	go func() { done <- o.AwaitPosts(time.Minute) }()
	waitUntil(t, o.Waiting)
	o.EndPost()
	if !<-done || o.Waiting() || o.PostsInFlight() != 0 {
		t.Fatal("AwaitPosts did not end with the POST")
	}
}
