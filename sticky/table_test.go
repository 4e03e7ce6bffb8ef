package sticky

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// evictLog records onEvict calls.
type evictLog struct {
	mu  sync.Mutex
	got []string
}

func (l *evictLog) onEvict(sid, backendID string) {
	l.mu.Lock()
	l.got = append(l.got, sid+"@"+backendID)
	l.mu.Unlock()
}

func (l *evictLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.got
	l.got = nil
	slices.Sort(got)
	return got
}

func TestTableGetPut(t *testing.T) {
	clk := newFakeClock()
	var log evictLog
	tab := NewTable(clk.Now, log.onEvict)
	if _, ok := tab.Get([]byte("nope")); ok {
		t.Fatal("Get on an empty table succeeded")
	}
	tab.PutIfAbsent("s1", "b1", time.Minute)
	tab.PutIfAbsent("s2", "b1", time.Minute)
	tab.PutIfAbsent("s3", "b2", time.Minute)
	if id, ok := tab.Get([]byte("s1")); !ok || id != "b1" {
		t.Errorf("Get(s1) = %q, %v", id, ok)
	}
	if id, ok := tab.Get([]byte("s3")); !ok || id != "b2" {
		t.Errorf("Get(s3) = %q, %v", id, ok)
	}
	if n := tab.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	if a, b, c := tab.Count("b1"), tab.Count("b2"), tab.Count("b3"); a != 2 || b != 1 || c != 0 {
		t.Errorf("Count = %d, %d, %d; want 2, 1, 0", a, b, c)
	}
	// A live sid is inserted once: a second PutIfAbsent, on any backend, changes nothing.
	if tab.PutIfAbsent("s1", "b1", time.Minute) || tab.PutIfAbsent("s1", "b2", time.Minute) {
		t.Error("PutIfAbsent of a live sid inserted it again")
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("PutIfAbsent of a live sid evicted %v", got)
	}
	if a, b := tab.Count("b1"), tab.Count("b2"); a != 2 || b != 1 {
		t.Errorf("Count after repeated PutIfAbsent = %d, %d; want 2, 1", a, b)
	}
	if id, _ := tab.Get([]byte("s1")); id != "b1" {
		t.Errorf("Get(s1) after repeated PutIfAbsent = %q, want b1", id)
	}
}

func TestTableDelete(t *testing.T) {
	var log evictLog
	tab := NewTable(newFakeClock().Now, log.onEvict)
	tab.PutIfAbsent("s1", "b1", time.Minute)
	if !tab.Delete([]byte("s1")) {
		t.Error("Delete(s1) = false")
	}
	if tab.Delete([]byte("s1")) {
		t.Error("second Delete(s1) = true")
	}
	if got := log.take(); !slices.Equal(got, []string{"s1@b1"}) {
		t.Errorf("evicted %v, want [s1@b1]", got)
	}
	if _, ok := tab.Get([]byte("s1")); ok || tab.Len() != 0 || tab.Count("b1") != 0 {
		t.Errorf("entry survived Delete: Len %d Count %d", tab.Len(), tab.Count("b1"))
	}
}

func TestTableExpiry(t *testing.T) {
	clk := newFakeClock()
	var log evictLog
	tab := NewTable(clk.Now, log.onEvict)
	tab.PutIfAbsent("idle", "b1", 60*time.Second)
	tab.PutIfAbsent("busy", "b1", 60*time.Second)
	tab.PutIfAbsent("short", "b2", 10*time.Second)
	tab.PutIfAbsent("forever", "b2", 0)

	clk.Advance(40 * time.Second)
	if _, ok := tab.Get([]byte("busy")); !ok { // refreshes busy to t+100s
		t.Fatal("busy expired early")
	}
	if _, ok := tab.Get([]byte("short")); ok {
		t.Error("short still live after its TTL")
	}
	if n := tab.Len(); n != 4 {
		t.Errorf("Len before Sweep = %d, want 4 (expired entries stay until swept)", n)
	}
	if n := tab.Sweep(); n != 1 {
		t.Errorf("Sweep removed %d, want 1", n)
	}
	if got := log.take(); !slices.Equal(got, []string{"short@b2"}) {
		t.Errorf("evicted %v, want [short@b2]", got)
	}

	clk.Advance(30 * time.Second) // t=70s: idle (60s) expired, busy (100s) live
	if _, ok := tab.Get([]byte("idle")); ok {
		t.Error("idle still live at 70s")
	}
	if id, ok := tab.Get([]byte("busy")); !ok || id != "b1" {
		t.Error("busy expired although it was refreshed at 40s")
	}
	// An expired entry is replaced by PutIfAbsent (the old one reported first) and not swept then.
	if !tab.PutIfAbsent("idle", "b1", time.Minute) {
		t.Error("PutIfAbsent over an expired entry did not insert")
	}
	if got := log.take(); !slices.Equal(got, []string{"idle@b1"}) {
		t.Errorf("replacing an expired entry evicted %v, want [idle@b1]", got)
	}
	if n := tab.Sweep(); n != 0 {
		t.Errorf("Sweep removed %d, want 0", n)
	}
	clk.Advance(1000 * time.Hour)
	if n := tab.Sweep(); n != 2 {
		t.Errorf("Sweep removed %d, want 2", n)
	}
	if got := log.take(); !slices.Equal(got, []string{"busy@b1", "idle@b1"}) {
		t.Errorf("evicted %v", got)
	}
	if id, ok := tab.Get([]byte("forever")); !ok || id != "b2" {
		t.Error("ttl 0 entry expired")
	}
	if tab.Len() != 1 || tab.Count("b1") != 0 || tab.Count("b2") != 1 {
		t.Errorf("Len %d Count(b1) %d Count(b2) %d", tab.Len(), tab.Count("b1"), tab.Count("b2"))
	}
	// Delete of an expired, unswept entry still reports it.
	tab.PutIfAbsent("gone", "b3", time.Second)
	clk.Advance(2 * time.Second)
	if !tab.Delete([]byte("gone")) {
		t.Error("Delete of an expired entry = false")
	}
	if got := log.take(); !slices.Equal(got, []string{"gone@b3"}) {
		t.Errorf("evicted %v", got)
	}
}

func TestTableEvictCallbackMayReenter(t *testing.T) {
	clk := newFakeClock()
	var tab *Table
	var calls []string
	tab = NewTable(clk.Now, func(sid, backendID string) {
		calls = append(calls, sid)
		tab.PutIfAbsent("re-"+sid, backendID, time.Hour) // would deadlock if called under a lock
		_ = tab.Len()
	})
	tab.PutIfAbsent("a", "b1", time.Second)
	clk.Advance(time.Minute)
	if n := tab.Sweep(); n != 1 {
		t.Fatalf("Sweep = %d", n)
	}
	tab.Delete([]byte("re-a"))
	if !slices.Equal(calls, []string{"a", "re-a"}) {
		t.Errorf("callbacks %v", calls)
	}
}

func TestTableNilArgs(t *testing.T) {
	tab := NewTable(nil, nil)
	tab.PutIfAbsent("s", "b", time.Minute)
	if id, ok := tab.Get([]byte("s")); !ok || id != "b" {
		t.Errorf("Get = %q, %v", id, ok)
	}
	if !tab.Delete([]byte("s")) {
		t.Error("Delete = false")
	}
}

func TestTableGetAllocs(t *testing.T) {
	tab := NewTable(newFakeClock().Now, nil)
	tab.PutIfAbsent("lv_VI97HAXpY6yYWAAAC", "backend-1", time.Minute)
	key := []byte("lv_VI97HAXpY6yYWAAAC")
	miss := []byte("unknown-sid")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := tab.Get(key); !ok {
			t.Fatal("Get missed")
		}
		if _, ok := tab.Get(miss); ok {
			t.Fatal("Get hit an unknown sid")
		}
	})
	if allocs != 0 {
		t.Errorf("Get allocates %v times per call, want 0", allocs)
	}
}

func TestTableConcurrent(t *testing.T) {
	clk := newFakeClock()
	var evicted sync.Map
	tab := NewTable(clk.Now, func(sid, backendID string) { evicted.Store(sid, backendID) })
	const workers, perWorker = 8, 500
	tab.PutIfAbsent("hot", "bh", time.Minute)
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ { // readers refreshing one entry while writers sweep and advance the clock
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if id, ok := tab.Get([]byte("hot")); !ok || id != "bh" {
					t.Errorf("Get(hot) = %q, %v", id, ok)
					return
				}
			}
		}()
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				sid := fmt.Sprintf("w%d-s%d", w, i)
				backend := fmt.Sprintf("b%d", i%4)
				tab.PutIfAbsent(sid, backend, time.Minute)
				if id, ok := tab.Get([]byte(sid)); !ok || id != backend {
					t.Errorf("Get(%s) = %q, %v", sid, id, ok)
				}
				if i%3 == 0 && !tab.Delete([]byte(sid)) {
					t.Errorf("Delete(%s) = false", sid)
				}
				if i%50 == 0 {
					tab.Sweep()
					clk.Advance(time.Millisecond)
					_ = tab.Count(backend)
				}
			}
		}()
	}
	wg.Wait()
	deleted := 0
	evicted.Range(func(_, _ any) bool { deleted++; return true })
	wantDeleted := workers * ((perWorker + 2) / 3)
	wantLive := workers*perWorker - wantDeleted + 1 // + hot
	if tab.Len() != wantLive || deleted != wantDeleted {
		t.Errorf("Len %d deleted %d, want %d and %d", tab.Len(), deleted, wantLive, wantDeleted)
	}
	total := tab.Count("bh")
	for b := 0; b < 4; b++ {
		total += tab.Count(fmt.Sprintf("b%d", b))
	}
	if total != wantLive {
		t.Errorf("sum of Count = %d, want %d", total, wantLive)
	}
}
