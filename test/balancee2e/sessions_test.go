package balancee2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// sessionOpts are the arguments of sessions.js.
type sessionOpts struct {
	URL         string
	N           int
	Mode        string   // polling, upgrade (default) or websocket
	Concurrency int      // clients connecting at once (default 20)
	XFF         []string // X-Forwarded-For of client i (nil: none)
	Rounds      int      // connect/close rounds per client (default 1)
	Hold        bool     // keep the last round's sockets until stop
}

// timed is an instant (unix ms) with a backend name or a reason.
type timed struct {
	At      int64  `json:"at"`
	Backend string `json:"backend"`
	Reason  string `json:"reason"`
}

// connectError is a failed connection attempt as socket.io-client saw it.
type connectError struct {
	At         int64   `json:"at"`
	Status     int     `json:"status"`
	RetryAfter *string `json:"retryAfter"`
	Message    string  `json:"message"`
}

// client is one client of the sessions.js summary.
type client struct {
	ID            int            `json:"id"`
	XFF           string         `json:"xff"`
	Placements    []timed        `json:"placements"` // one per round
	Disconnects   []timed        `json:"disconnects"`
	Reconnects    []timed        `json:"reconnects"`
	ConnectErrors []connectError `json:"connectErrors"`
	Errors        []string       `json:"errors"`
}

// summary is the JSON summary sessions.js prints on stdout.
type summary struct {
	Fatal   string   `json:"fatal"`
	Clients []client `json:"clients"`
	Ms      int64    `json:"ms"`
}

// sessions is a running sessions.js.
type sessions struct {
	*testkit.Proc
	opts sessionOpts
}

// startSessions starts sessions.js.
func startSessions(t *testing.T, o sessionOpts) *sessions {
	t.Helper()
	if o.Mode == "" {
		o.Mode = "upgrade"
	}
	if o.Concurrency == 0 {
		o.Concurrency = 20
	}
	if o.Rounds == 0 {
		o.Rounds = 1
	}
	args := []string{filepath.Join(testDir(), "sessions.js"), "--url", o.URL, "--n", strconv.Itoa(o.N), "--mode", o.Mode,
		"--concurrency", strconv.Itoa(o.Concurrency), "--rounds", strconv.Itoa(o.Rounds)}
	if o.XFF != nil {
		f := filepath.Join(t.TempDir(), "xff.txt")
		if err := os.WriteFile(f, []byte(strings.Join(o.XFF, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--xff-file", f)
	}
	if o.Hold {
		args = append(args, "--hold")
	}
	return &sessions{Proc: testkit.Start(t, testkit.Command{Name: "sessions.js", Dir: testDir(), Bin: testkit.Node(), Args: args}), opts: o}
}

// connected is the all_connected progress line: clients placed by backend of their last round.
type connected struct {
	Count     int            `json:"count"`
	N         int            `json:"n"`
	ByBackend map[string]int `json:"byBackend"`
	At        int64          `json:"at"`
}

// waitConnected waits until every client has finished its rounds (held sockets connected).
func (s *sessions) waitConnected(t *testing.T, timeout time.Duration) connected {
	t.Helper()
	l, _, err := s.WaitLine(0, timeout, testkit.HasEvent("all_connected"))
	if err != nil {
		t.Fatalf("sessions.js: %v\n%s", err, s.Tail(20))
	}
	var c connected
	if err := json.Unmarshal([]byte(l), &c); err != nil {
		t.Fatalf("sessions.js: bad line %q: %v", l, err)
	}
	if c.Count != c.N {
		t.Fatalf("sessions.js: only %d of %d clients connected", c.Count, c.N)
	}
	return c
}

// waitReconnects waits until held sockets have reconnected (and learnt their backend) n times.
func (s *sessions) waitReconnects(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	_, _, err := s.WaitLine(0, timeout, func(l string) bool {
		if !strings.Contains(l, `"event":"reconnect"`) {
			return false
		}
		var ev struct{ Total int }
		return json.Unmarshal([]byte(l), &ev) == nil && ev.Total >= n
	})
	if err != nil {
		t.Errorf("sessions.js: fewer than %d reconnects: %v", n, err)
	}
}

// stop ends a hold (SIGINT) or waits for a run to end, and returns the summary.
func (s *sessions) stop(t *testing.T) summary {
	t.Helper()
	if s.opts.Hold {
		_ = s.Signal(syscall.SIGINT)
	}
	select {
	case <-s.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("sessions.js did not exit\n%s", s.Tail(20))
	}
	out := s.Stdout()
	for i := len(out) - 1; i >= 0; i-- {
		if !strings.HasPrefix(out[i], "{") {
			continue
		}
		var sum summary
		if err := json.Unmarshal([]byte(out[i]), &sum); err != nil {
			t.Fatalf("sessions.js summary: %v", err)
		}
		if sum.Fatal != "" {
			t.Fatalf("sessions.js crashed: %s", sum.Fatal)
		}
		if len(sum.Clients) != s.opts.N {
			t.Fatalf("sessions.js: %d clients in the summary, want %d", len(sum.Clients), s.opts.N)
		}
		return sum
	}
	t.Fatalf("sessions.js printed no summary\n%s", s.Tail(20))
	return summary{}
}

// ips returns n distinct IPv4 addresses "10.<a>.<i/250>.<i%250+1>".
func ips(a, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.%d.%d.%d", a, i/250, i%250+1)
	}
	return out
}

// shares formats a count per backend as "b1 101 (33.7%), ...".
func shares(names []string, count map[string]int) string {
	total := 0
	for _, n := range names {
		total += count[n]
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d (%.1f%%)", n, count[n], pct(count[n], total))
	}
	return strings.Join(parts, ", ")
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
