package chaos

import (
	"math"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// The rules that explain a disconnect: the kill explains its backend's sessions, the drain its
// backend's, a replacement WebSocket sessions only; the latest event wins where windows overlap.
func TestCauseOf(t *testing.T) {
	t0 := time.UnixMilli(1_000_000)
	at := func(s float64) int64 { return t0.Add(time.Duration(s * float64(time.Second))).UnixMilli() }
	ev := func(kind, target string, from, to float64) *event {
		return &event{kind: kind, target: target, start: t0.Add(time.Duration(from * float64(time.Second))),
			end: t0.Add(time.Duration(to * float64(time.Second)))}
	}
	kill := ev(kindKill, "chat-1", 0, 4)
	replA := ev(kindReplace, "replica A", 30, 32)
	replB := ev(kindReplace, "replica B", 37, 39)
	drain := ev(kindDrain, "chat2-1", 45, 48)
	events := []*event{kill, replA, replB, drain}
	for _, tc := range []struct {
		name               string
		at                 float64
		backend, transport string
		cause              string
		event              *event
	}{
		{"killed backend's session", 1, "chat-1", "polling", causeKill, kill},
		{"killed backend's session, noticed late", 4 + causeGrace.Seconds() - 0.5, "chat-1", "websocket", causeKill, kill},
		{"another backend's session during the kill", 1, "chat-2", "polling", causeUnexplained, kill},
		{"after the kill's window", 4 + causeGrace.Seconds() + 1, "chat-1", "polling", causeUnexplained, nil},
		{"websocket during a replacement", 31, "chat-2", "websocket", causeReplace, replA},
		{"polling during a replacement", 31, "chat-2", "polling", causeUnexplained, replA},
		{"overlapping windows: the latest replacement", 38, "chat-3", "websocket", causeReplace, replB},
		{"drained backend's session", 46, "chat2-1", "websocket", causeDrain, drain},
		{"drained backend's session in the window of a replacement", 46, "chat2-1", "polling", causeDrain, drain},
		{"before any event", -1, "chat-1", "polling", causeUnexplained, nil},
	} {
		cause, e := causeOf(events, at(tc.at), tc.backend, tc.transport)
		if cause != tc.cause || e != tc.event {
			t.Errorf("%s: cause %q (event %v), want %q (event %v)", tc.name, cause, e, tc.cause, tc.event)
		}
	}
}

func TestHistQuantile(t *testing.T) {
	h := hist{}
	h.add(map[string]int{"0": 50, "9": 40, "20": 10}) // < 1 ms; [4, 4.76) ms; [26.9, 32) ms
	for _, tc := range []struct{ q, want float64 }{{0.5, 1}, {0.51, 4.76}, {0.9, 4.76}, {0.99, 32}} {
		if got := h.quantile(tc.q); got < tc.want*0.99 || got > tc.want*1.01 {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := (hist{}).quantile(0.5); got != 0 {
		t.Errorf("empty histogram: %v", got)
	}
}

// The leak limits: 10% over the baseline; RSS against the floor when the baseline is below it.
func TestLeakLimits(t *testing.T) {
	base := resources{goroutines: 20, fds: 17, rss: 24 << 20}
	lim := base.limit()
	if lim.goroutines != 22 || lim.fds != 18 || math.Abs(lim.rss-rssFloor*1.1) > 1 {
		t.Fatalf("limit of %v = %+v", base, lim)
	}
	if !(resources{goroutines: 22, fds: 18, rss: 50 << 20}).within(lim) {
		t.Error("22 goroutines, 18 fds, 50 MiB not within the limit")
	}
	for _, r := range []resources{{goroutines: 23, fds: 17, rss: base.rss}, {goroutines: 20, fds: 19, rss: base.rss}, {goroutines: 20, fds: 17, rss: rssFloor * 1.2}} {
		if r.within(lim) {
			t.Errorf("%v within %+v", r, lim)
		}
	}
	if big := (resources{rss: 200 << 20}).limit(); big.rss < 219.9*(1<<20) || big.rss > 220.1*(1<<20) {
		t.Errorf("limit of a 200 MiB baseline: %v", big.rss)
	}
}

func TestDrainClose(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"/socket.io/?EIO=4&transport=polling&sid=abc", true},
		{"/socket.io/?EIO=4&transport=polling&t=PXy3&sid=abc", false},
		{"/socket.io/?EIO=3&transport=polling&t=PXy3-1&b64=1&sid=abc", false},
		{"/socket.io/?EIO=4&transport=polling&sid=abcd", false},
	} {
		if got := drainClose(testkit.BackendEvent{URL: tc.url, SID: "abc"}); got != tc.want {
			t.Errorf("drainClose(%q) = %v", tc.url, got)
		}
	}
}

func TestParseGoroutines(t *testing.T) {
	profile := "goroutine profile: total 5\n" +
		"3 @ 0x43e 0x40b 0x6f1\n#\t0x43e\truntime.gopark+0x2e\t/go/src/runtime/proc.go:424\n" +
		"#\t0x6f1\tgithub.com/valyala/fasthttp.(*workerPool).workerFunc+0x10\t/x/workerpool.go:1\n\n" +
		"2 @ 0x43e 0x7aa\n#\t0x43e\truntime.gopark+0x2e\t/go/src/runtime/proc.go:424\n" +
		"#\t0x7aa\tinternal/poll.runtime_pollWait+0x85\t/x\n#\t0x7bb\tnet/http.(*persistConn).readLoop+0x1\t/x\n"
	got := parseGoroutines(profile)
	if got["github.com/valyala/fasthttp.(*workerPool).workerFunc+0x10"] != 3 || got["net/http.(*persistConn).readLoop+0x1"] != 2 || len(got) != 2 {
		t.Fatalf("parseGoroutines = %v", got)
	}
	if d := stackDiff(map[string]int{"a": 1}, map[string]int{"a": 3, "b": 1}); d != "+2 a, +1 b" {
		t.Errorf("stackDiff = %q", d)
	}
}
