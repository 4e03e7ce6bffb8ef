package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"sioproxy/eioclient"
	"sioproxy/eioserver"
)

// startEIOServer serves an eioserver on 127.0.0.1:0 and returns its base URL.
func startEIOServer(t *testing.T) string {
	t.Helper()
	l, err := eioserver.New(eioserver.Options{Name: "b1"}).Listen("127.0.0.1:0", "eioserver")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l.URL
}

// TestGeneratorAgainstEIOServer runs the generator for ~2 s with 20 sessions per mode against
// an in-process eioserver: every session connects, every emit is acked, nothing fails.
func TestGeneratorAgainstEIOServer(t *testing.T) {
	base := startEIOServer(t)
	for _, mode := range []eioclient.Mode{eioclient.Polling, eioclient.Upgrade, eioclient.WebSocket} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := Config{
				URL: base, Path: "/socket.io/", EIO: 4, Mode: mode,
				Sessions: 20, Ramp: 200, Rate: 10, Payload: 100, BinaryRatio: 0.3,
				Duration: 2 * time.Second, Timeout: 5 * time.Second, Event: "echo", Seed: 1,
				SourceAddrs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("127.0.0.2")},
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var snaps []Snapshot
			sum := newGenerator(cfg, time.Now).Run(context.Background(), 200*time.Millisecond, func(s Snapshot) {
				mu.Lock()
				snaps = append(snaps, s)
				mu.Unlock()
			})
			if n := sum.TotalErrors(); n != 0 {
				t.Errorf("errors: %v", sum.Errors)
			}
			s := sum.Sessions
			if s.OK != 20 || s.Failed != 0 || s.Dropped != 0 || s.Held != 20 {
				t.Errorf("sessions %+v", s)
			}
			wantWS := int64(20)
			if mode == eioclient.Polling {
				wantWS = 0
			}
			if sum.Transports["websocket"] != wantWS || sum.Transports["polling"] != 20-wantWS {
				t.Errorf("transports %v", sum.Transports)
			}
			if sum.Emits.Sent == 0 || sum.Emits.Acked != sum.Emits.Sent || sum.Ack.Count != sum.Emits.Sent {
				t.Errorf("emits %+v, ack latency count %d", sum.Emits, sum.Ack.Count)
			}
			// 20 sessions x 10/s x ~2.1 s: allow for a loaded machine, but not for a stall.
			if sum.Emits.Sent < 200 {
				t.Errorf("only %d emits", sum.Emits.Sent)
			}
			if sum.HandshakesPerSec <= 0 || sum.Ack.P50 <= 0 || sum.Ack.P50 > sum.Ack.P999 || sum.Ack.P999 > sum.Ack.Max {
				t.Errorf("rates/latency inconsistent: %+v %+v", sum.HandshakesPerSec, sum.Ack)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(snaps) == 0 || snaps[len(snaps)-1].Emits == 0 {
				t.Errorf("progress snapshots: %+v", snaps)
			}
		})
	}
}

// TestRunJSON drives the command end to end: flags, run, JSON summary, exit status.
func TestRunJSON(t *testing.T) {
	base := startEIOServer(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{
		"-url", base, "-mode", "websocket", "-sessions", "3", "-ramp", "100", "-rate", "20",
		"-duration", "300ms", "-json",
	}, &out, &errOut, false)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	var sum Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, out.String())
	}
	if sum.Sessions.OK != 3 || sum.Emits.Sent == 0 || sum.Emits.Acked != sum.Emits.Sent || sum.Mode != "websocket" {
		t.Fatalf("summary %+v", sum)
	}
}

// TestRunFailures checks exit statuses and error counting when nothing can connect.
func TestRunFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()

	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-url", closed, "-sessions", "4", "-ramp", "1000", "-duration", "50ms"}, &out, &errOut, false)
	if code != 1 {
		t.Fatalf("exit %d with no session connected, want 1", code)
	}
	for _, want := range []string{"4 target, 0 ok, 4 failed", "connect/dial", "n/a (no samples)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"-sessions", "0"}, &out, &errOut, false); code != 2 {
		t.Fatalf("bad flags: exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "-url is required") || out.Len() != 0 {
		t.Fatalf("bad flags: stdout %q stderr %q", out.String(), errOut.String())
	}
	if code := run(context.Background(), []string{"-h"}, &out, &errOut, false); code != 0 {
		t.Fatalf("-h: exit %d, want 0", code)
	}
}

// TestRunCancelled checks that cancelling the context ends a long run early with a summary.
func TestRunCancelled(t *testing.T) {
	base := startEIOServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{URL: base, Path: "/socket.io/", EIO: 4, Mode: eioclient.WebSocket, Sessions: 2, Ramp: 100,
		Rate: 50, Duration: time.Hour, Hold: time.Hour, Timeout: 5 * time.Second, Event: "echo"}
	var once sync.Once
	done := make(chan Summary, 1)
	go func() {
		done <- newGenerator(cfg, time.Now).Run(ctx, 10*time.Millisecond, func(s Snapshot) {
			if s.OK == 2 && s.Acks > 0 {
				once.Do(cancel)
			}
		})
	}()
	select {
	case sum := <-done:
		if sum.Sessions.OK != 2 || sum.Emits.Acked == 0 {
			t.Fatalf("summary %+v", sum)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not end after cancel")
	}
}
