package admin

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

func TestHistoryRing(t *testing.T) {
	h := NewHistory(4, 10)
	if v := h.Since(0); v.Seq != 0 || v.From != 1 || len(v.Times) != 0 || len(v.Sessions) != 0 {
		t.Fatalf("empty history: %+v", v)
	}
	for i := 1; i <= 3; i++ {
		h.Record(at(i), []BackendCount{{"a", int64(i)}, {"b", int64(10 * i)}}, Counts{Handshakes: uint64(5 * i)})
	}
	v := h.Since(0)
	if v.Seq != 3 || v.From != 1 || fmt.Sprint(v.Times) != fmt.Sprint([]int64{at(1).UnixMilli(), at(2).UnixMilli(), at(3).UnixMilli()}) {
		t.Fatalf("three samples: %+v", v)
	}
	if fmt.Sprint(v.Sessions["a"]) != "[1 2 3]" || fmt.Sprint(v.Sessions["b"]) != "[10 20 30]" {
		t.Fatalf("series: %v", v.Sessions)
	}
	if fmt.Sprint(v.Handshakes) != "[0 5 5]" {
		t.Fatalf("handshake increments %v, want [0 5 5] (the first sample has nothing to compare with)", v.Handshakes)
	}
	// Incremental: only what follows since.
	if v := h.Since(2); v.From != 3 || len(v.Times) != 1 || fmt.Sprint(v.Sessions["a"]) != "[3]" {
		t.Fatalf("since 2: %+v", v)
	}
	if v := h.Since(3); v.From != 4 || len(v.Times) != 0 || len(v.Sessions) != 0 {
		t.Fatalf("since the newest: %+v", v)
	}
	// Wrap around: b leaves, c joins; the ring keeps the last 4 samples.
	h.Record(at(4), []BackendCount{{"a", 4}, {"c", 40}}, Counts{Handshakes: 20})
	h.Record(at(5), []BackendCount{{"a", 5}, {"c", 50}}, Counts{Handshakes: 25})
	v = h.Since(0)
	if v.Seq != 5 || v.From != 2 || len(v.Times) != 4 || v.Times[0] != at(2).UnixMilli() {
		t.Fatalf("after wrapping: seq %d from %d times %v", v.Seq, v.From, v.Times)
	}
	if fmt.Sprint(v.Sessions["a"]) != "[2 3 4 5]" || fmt.Sprint(v.Sessions["b"]) != "[20 30 -1 -1]" || fmt.Sprint(v.Sessions["c"]) != "[-1 -1 40 50]" {
		t.Fatalf("series after wrapping: %v", v.Sessions)
	}
	b, _ := json.Marshal(v.Sessions["b"])
	if string(b) != "[20,30,null,null]" {
		t.Fatalf("absent samples in JSON: %s", b)
	}
	// A since older than the ring, or newer than the newest (another process), gets everything.
	if v := h.Since(1); v.From != 2 || len(v.Times) != 4 {
		t.Fatalf("since 1 (dropped): from %d n %d", v.From, len(v.Times))
	}
	if v := h.Since(99); v.From != 2 || len(v.Times) != 4 {
		t.Fatalf("since 99 (restart): from %d n %d", v.From, len(v.Times))
	}
	// b is forgotten once no sample in the ring has it.
	h.Record(at(6), []BackendCount{{"a", 6}}, Counts{})
	h.Record(at(7), []BackendCount{{"a", 7}}, Counts{})
	h.mu.Lock()
	_, hasB := h.series["b"]
	h.mu.Unlock()
	if hasB {
		t.Fatal("b is kept after leaving the whole ring")
	}
	if v := h.Since(0); v.Sessions["b"] != nil || fmt.Sprint(v.Handshakes) != "[5 5 0 0]" {
		t.Fatalf("after b left: %v handshakes %v (a counter that goes down counts 0)", v.Sessions, v.Handshakes)
	}
}

func TestHistoryBoundedBackends(t *testing.T) {
	h := NewHistory(3, 2)
	for i := 1; i <= 5; i++ {
		h.Record(at(i), []BackendCount{{"a", 1}, {"b", 2}, {fmt.Sprint("new", i), 3}}, Counts{})
	}
	v := h.Since(0)
	if len(v.Sessions) != 2 || v.Sessions["a"] == nil || v.Sessions["b"] == nil {
		t.Fatalf("tracked %d backends (%v), want the first 2", len(v.Sessions), v.Sessions)
	}
	for i := 6; i <= 8; i++ { // a and b leave the ring: their room is free again
		h.Record(at(i), nil, Counts{})
	}
	h.Record(at(9), []BackendCount{{"x", int64(math.MaxInt64)}, {"y", -5}}, Counts{})
	v = h.Since(8)
	if len(v.Sessions) != 2 || v.Sessions["x"][0] != math.MaxInt32 || v.Sessions["y"][0] != 0 {
		t.Fatalf("after a and b left: %v", v.Sessions)
	}
}

func TestHistoryRates(t *testing.T) {
	h := NewHistory(100, 10)
	if r := h.Rates(10 * time.Second); r != (Rates{}) {
		t.Fatalf("rates of an empty history: %+v", r)
	}
	c := Counts{}
	for i := 1; i <= 30; i++ {
		c.Handshakes += 4
		if i > 25 {
			c.SIDUnknown += 10
		}
		if i == 3 || i == 29 {
			c.Reloads++
		}
		h.Record(at(i), nil, c)
	}
	r := h.Rates(10 * time.Second)
	if r.WindowSeconds != 10 || r.Handshakes != 4 || r.SIDUnknown != 5 || r.Unavailable != 0 || r.Reloads != 2 {
		t.Fatalf("rates: %+v, want 10 s: 4 handshakes/s, 5 sid unknown/s, 2 reloads", r)
	}
	// Samples farther apart than the window: the newest interval is used whole.
	h2 := NewHistory(10, 10)
	h2.Record(at(0), nil, Counts{})
	h2.Record(at(60), nil, Counts{Unavailable: 120})
	if r := h2.Rates(10 * time.Second); r.WindowSeconds != 60 || r.Unavailable != 2 {
		t.Fatalf("sparse rates: %+v", r)
	}
}

// Record and Since from several goroutines (run with -race).
func TestHistoryConcurrent(t *testing.T) {
	h := NewHistory(50, 8)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 3; g++ {
		wg.Go(func() {
			var since uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				v := h.Since(since)
				for id, s := range v.Sessions {
					if len(s) != len(v.Times) {
						t.Errorf("series %s has %d samples, times %d", id, len(s), len(v.Times))
						return
					}
				}
				since = v.Seq
				_ = h.Rates(5 * time.Second)
			}
		})
	}
	for i := 1; i <= 2000; i++ {
		h.Record(at(i), []BackendCount{{fmt.Sprint("b", i%10), int64(i)}}, Counts{Handshakes: uint64(i)})
	}
	close(stop)
	wg.Wait()
	if v := h.Since(0); v.Seq != 2000 || len(v.Times) != 50 || len(v.Sessions) > 8 {
		t.Fatalf("after 2000 samples: seq %d, %d samples, %d series", v.Seq, len(v.Times), len(v.Sessions))
	}
}
