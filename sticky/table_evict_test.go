package sticky

import (
	"fmt"
	"testing"
	"time"
)

func TestEvictBackend(t *testing.T) {
	var evicted []string
	tb := NewTable(nil, func(sid, be string) { evicted = append(evicted, be+"/"+sid) })
	for i := 0; i < 50; i++ {
		tb.PutIfAbsent(fmt.Sprint("a", i), "A", time.Minute)
		tb.PutIfAbsent(fmt.Sprint("b", i), "B", time.Minute)
	}
	if n := len(tb.EvictBackend("A", 7)); n != 7 || tb.Count("A") != 43 || tb.Count("B") != 50 || len(evicted) != 7 {
		t.Fatalf("evict 7: removed %d, A=%d B=%d, callbacks %d", n, tb.Count("A"), tb.Count("B"), len(evicted))
	}
	for _, e := range evicted {
		if e[0] != 'A' {
			t.Fatalf("evicted %s from the wrong backend", e)
		}
	}
	if n := len(tb.EvictBackend("A", 0)); n != 43 || tb.Count("A") != 0 || tb.Len() != 50 {
		t.Fatalf("evict all: removed %d, A=%d, len %d", n, tb.Count("A"), tb.Len())
	}
	if n := len(tb.EvictBackend("nobody", 0)); n != 0 {
		t.Fatalf("evicted %d of an unknown backend", n)
	}
}

func TestLastSeen(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := NewTable(func() time.Time { return now }, nil)
	tb.PutIfAbsent("s", "A", time.Minute)
	if seen, ok := tb.LastSeen([]byte("s")); !ok || !seen.Equal(now) {
		t.Fatalf("after put: %v %v", seen, ok)
	}
	now = now.Add(7 * time.Second)
	tb.Get([]byte("s"))
	if seen, _ := tb.LastSeen([]byte("s")); !seen.Equal(now) {
		t.Fatalf("after get: %v, want %v", seen, now)
	}
	if _, ok := tb.LastSeen([]byte("nope")); ok {
		t.Fatal("absent sid seen")
	}
}
