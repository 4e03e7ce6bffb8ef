package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleSummary() Summary {
	return Summary{
		URL: "http://127.0.0.1:8080", Path: "/socket.io/", EIO: 4, Mode: "upgrade",
		Sessions:         SessionCounts{Target: 10, Started: 10, OK: 9, Failed: 1, Held: 9},
		Transports:       map[string]int64{"polling": 0, "websocket": 9},
		RampSeconds:      0.1,
		RunSeconds:       2.1,
		HandshakesPerSec: 90,
		Handshake:        Latency{Count: 9, P50: 1.5, P90: 2, P99: 3, P999: 3, Max: 3, Mean: 1.7},
		Emits:            EmitCounts{Sent: 200, Acked: 199, PerSec: 95.2, SteadyPerS: 100},
		Ack:              Latency{Count: 199, P50: 0.42, P90: 0.8, P99: 12.5, P999: 150, Max: 151, Mean: 0.9},
		Errors:           map[string]uint64{"connect/http_status": 1, "ack/timeout": 1},
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := writeText(&b, sampleSummary()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"upgrade, EIO 4, http://127.0.0.1:8080/socket.io/",
		"10 target, 9 ok, 1 failed, 0 dropped, 9 held at the end (polling 0, websocket 9)",
		"90.0/s over a 0.10s ramp",
		"200 sent, 199 acked in 2.10s: 95.2/s overall, 100.0/s after the ramp",
		"ack latency  p50 0.42ms  p90 0.80ms  p99 12.5ms  p99.9 150ms  max 151ms",
		"errors       2\n  ack/timeout              1\n  connect/http_status      1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text summary lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, sampleSummary()); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	ack := m["ack_ms"].(map[string]any)
	if ack["p99_ms"] != 12.5 || ack["p999_ms"] != 150.0 || m["handshakes_per_s"] != 90.0 {
		t.Fatalf("JSON %s", b.String())
	}
	if errs := m["errors"].(map[string]any); errs["ack/timeout"] != 1.0 {
		t.Fatalf("errors %v", errs)
	}
}

func TestProgressLine(t *testing.T) {
	prev := Snapshot{Elapsed: time.Second, Emits: 100}
	cur := Snapshot{Elapsed: 2 * time.Second, Phase: PhaseRun, Started: 10, Alive: 9, Failed: 1,
		Emits: 350, Pending: 3, P50: 420 * time.Microsecond, P99: 12500 * time.Microsecond, Errors: 1}
	got := progressLine(cur, prev)
	for _, want := range []string{"2.0s run", "sessions 9/10 up, 1 failed", "emits 350 (250/s), 3 pending", "ack p50 0.42ms p99 12.5ms", "errors 1"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
}
