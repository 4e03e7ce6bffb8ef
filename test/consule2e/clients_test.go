package consule2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientOpts are the arguments of test/node/clients.js (socket.io-client@4).
type clientOpts struct {
	URL         string
	Mode        string // polling, upgrade, websocket
	N           int
	Emits       int
	Concurrency int
	TimeoutMs   int
	HoldMs      int
}

func (o clientOpts) args() []string {
	if o.Emits == 0 {
		o.Emits = 3
	}
	if o.Concurrency == 0 {
		o.Concurrency = 25
	}
	if o.TimeoutMs == 0 {
		o.TimeoutMs = 30000
	}
	a := []string{"clients.js", "--url", o.URL, "--mode", o.Mode, "--version", "4",
		"--n", strconv.Itoa(o.N), "--emits", strconv.Itoa(o.Emits),
		"--concurrency", strconv.Itoa(o.Concurrency), "--timeout-ms", strconv.Itoa(o.TimeoutMs)}
	if o.HoldMs > 0 {
		a = append(a, "--hold-ms", strconv.Itoa(o.HoldMs))
	}
	return a
}

// timedEvent is a disconnect or reconnect seen by a held session (At: unix ms).
type timedEvent struct {
	At      int64  `json:"at"`
	Reason  string `json:"reason"`
	Backend string `json:"backend"`
}

// clientSession is one session of the clients.js summary.
type clientSession struct {
	ID            int            `json:"id"`
	OK            bool           `json:"ok"`
	Backends      []string       `json:"backends"`
	Transport     string         `json:"transport"`
	SID           string         `json:"sid"`
	Errors        []string       `json:"errors"`
	FirstBackend  string         `json:"firstBackend"`
	LastBackend   string         `json:"lastBackend"`
	ConnectedAt   int64          `json:"connectedAt"`
	Disconnects   []timedEvent   `json:"disconnects"`
	Reconnects    []timedEvent   `json:"reconnects"`
	Acks          int            `json:"acks"`
	AcksByBackend map[string]int `json:"acksByBackend"`
	LastAckAt     int64          `json:"lastAckAt"`
}

// clientSummary is the JSON summary clients.js prints.
type clientSummary struct {
	OK        int             `json:"ok"`
	Failed    int             `json:"failed"`
	Fatal     string          `json:"fatal"`
	Mode      string          `json:"mode"`
	Connected int             `json:"connected"`
	ByBackend map[string]int  `json:"byBackend"`
	Sessions  []clientSession `json:"sessions"`
}

// runClients runs clients.js to completion and returns its summary.
func runClients(t *testing.T, o clientOpts) clientSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, o.args()...)
	cmd.Dir = nodeDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("clients.js %v: %v\nstderr: %s", o.args()[1:], err, lastBytes(stderr.String(), 4000))
	}
	return parseSummary(t, stdout.Bytes(), stderr.String())
}

func parseSummary(t *testing.T, stdout []byte, stderr string) clientSummary {
	t.Helper()
	var s clientSummary
	line := bytes.TrimSpace(stdout)
	if i := bytes.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal(line, &s); err != nil {
		t.Fatalf("clients.js summary: %v\nstdout: %s\nstderr: %s", err, lastBytes(string(stdout), 2000), lastBytes(stderr, 4000))
	}
	if s.Fatal != "" {
		t.Fatalf("clients.js crashed: %s", s.Fatal)
	}
	return s
}

// requireAllOK fails unless every session of a run-mode summary succeeded on exactly one backend.
func requireAllOK(t *testing.T, s clientSummary, n int) {
	t.Helper()
	if s.OK == n && s.Failed == 0 && len(s.Sessions) == n {
		return
	}
	bad := 0
	for _, ss := range s.Sessions {
		if !ss.OK && bad < 5 {
			bad++
			t.Logf("%s session %d: backends %v, errors %q", s.Mode, ss.ID, ss.Backends, ss.Errors)
		}
	}
	t.Fatalf("clients.js %s: %d ok, %d failed of %d sessions", s.Mode, s.OK, s.Failed, n)
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// holdRun is a clients.js --hold-ms run in the background.
type holdRun struct {
	*proc
	opts clientOpts
}

// startHold starts a hold-mode clients.js run; it ends at stop or after HoldMs.
func startHold(t *testing.T, o clientOpts) *holdRun {
	t.Helper()
	if o.HoldMs == 0 {
		o.HoldMs = 120000
	}
	p := startProc(t, "clients "+o.Mode, nodeDir, true, nodeBin, o.args()...)
	return &holdRun{proc: p, opts: o}
}

// waitProgress waits for a progress event ("all_connected", "all_acked") of every session and
// returns its unix ms.
func (h *holdRun) waitProgress(t *testing.T, event string, timeout time.Duration) int64 {
	t.Helper()
	line, _, err := h.waitLine(0, timeout, func(l string) bool { return strings.Contains(l, `"event":"`+event+`"`) })
	if err != nil {
		t.Fatalf("clients %s: %v\n%s", h.opts.Mode, err, h.tail(20))
	}
	var ev struct {
		Count int   `json:"count"`
		N     int   `json:"n"`
		At    int64 `json:"at"`
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("clients %s: bad progress line %q: %v", h.opts.Mode, line, err)
	}
	if ev.Count != ev.N {
		t.Fatalf("clients %s: %s with only %d of %d sessions", h.opts.Mode, event, ev.Count, ev.N)
	}
	return ev.At
}

// waitAckedAfter waits until every session of the run has had an ack later than ms (unix ms) and
// returns how long that took from ms.
func (h *holdRun) waitAckedAfter(t *testing.T, ms int64, timeout time.Duration) time.Duration {
	t.Helper()
	var at int64
	_, _, err := h.waitLine(0, timeout, func(l string) bool {
		if !strings.Contains(l, `"event":"acks"`) {
			return false
		}
		var ev struct {
			At           int64 `json:"at"`
			MinLastAckAt int64 `json:"minLastAckAt"`
		}
		if json.Unmarshal([]byte(l), &ev) == nil && ev.MinLastAckAt > ms {
			at = ev.MinLastAckAt
			return true
		}
		return false
	})
	if err != nil {
		t.Errorf("clients %s: not every session was acked after %d: %v", h.opts.Mode, ms, err)
		return 0
	}
	return time.Duration(at-ms) * time.Millisecond
}

// stop ends the hold (SIGINT) and returns the summary.
func (h *holdRun) stop(t *testing.T) clientSummary {
	t.Helper()
	_ = h.signal(syscall.SIGINT)
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("clients %s did not exit after SIGINT", h.opts.Mode)
	}
	lines, _ := h.snapshot()
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], `{"ok"`) {
			return parseSummary(t, []byte(lines[i]), h.tail(20))
		}
	}
	t.Fatalf("clients %s printed no summary\n%s", h.opts.Mode, h.tail(30))
	return clientSummary{}
}

// nowMs is the wall clock in unix milliseconds, comparable with the times clients.js reports.
func nowMs() int64 { return time.Now().UnixMilli() }
