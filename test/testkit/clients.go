package testkit

import (
	"encoding/json"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// ClientsRunTimeout bounds a run-mode clients.js (RunClients).
const ClientsRunTimeout = 3 * time.Minute

// ClientOpts are the arguments of test/node/clients.js; zero fields take the defaults noted.
type ClientOpts struct {
	URL         string
	Mode        string // polling, upgrade, websocket
	Version     string // "4" (default) or "2"
	N           int
	Emits       int // default 5
	Concurrency int // default 50
	TimeoutMs   int // default 30000
	HoldMs      int // hold mode: keep the sessions and emit until SIGINT or HoldMs
	// LocalAddress binds the clients' connections to this local IP (another 127.0.0.x), "" = any.
	LocalAddress string
	// Env is added to the environment of clients.js (NODE_EXTRA_CA_CERTS=FILE trusts a test CA).
	Env []string
	// Origin, when set, is sent as the Origin header of every request, as a browser page of that
	// origin does (servers that check it, like python-socketio by default, see it).
	Origin string
}

// Args returns the command line of clients.js, defaults filled in.
func (o ClientOpts) Args() []string {
	if o.Version == "" {
		o.Version = "4"
	}
	if o.Emits == 0 {
		o.Emits = 5
	}
	if o.Concurrency == 0 {
		o.Concurrency = 50
	}
	if o.TimeoutMs == 0 {
		o.TimeoutMs = 30000
	}
	a := []string{"clients.js", "--url", o.URL, "--mode", o.Mode, "--version", o.Version,
		"--n", strconv.Itoa(o.N), "--emits", strconv.Itoa(o.Emits),
		"--concurrency", strconv.Itoa(o.Concurrency), "--timeout-ms", strconv.Itoa(o.TimeoutMs)}
	if o.HoldMs > 0 {
		a = append(a, "--hold-ms", strconv.Itoa(o.HoldMs))
	}
	if o.LocalAddress != "" {
		a = append(a, "--local-address", o.LocalAddress)
	}
	if o.Origin != "" {
		a = append(a, "--origin", o.Origin)
	}
	return a
}

// TimedEvent is a disconnect or reconnect seen by a held session (At: unix ms).
type TimedEvent struct {
	At      int64  `json:"at"`
	Reason  string `json:"reason"`
	Backend string `json:"backend"`
}

// ClientSession is one session of the clients.js summary.
type ClientSession struct {
	ID            int            `json:"id"`
	OK            bool           `json:"ok"`
	Backends      []string       `json:"backends"`
	Transport     string         `json:"transport"`
	SID           string         `json:"sid"`
	Errors        []string       `json:"errors"`
	Ms            int            `json:"ms"`
	FirstBackend  string         `json:"firstBackend"`
	LastBackend   string         `json:"lastBackend"`
	ConnectedAt   int64          `json:"connectedAt"`
	Disconnects   []TimedEvent   `json:"disconnects"`
	Reconnects    []TimedEvent   `json:"reconnects"`
	Acks          int            `json:"acks"`
	AcksByBackend map[string]int `json:"acksByBackend"`
	LastAckAt     int64          `json:"lastAckAt"`
}

// ClientSummary is the JSON summary clients.js prints last.
type ClientSummary struct {
	OK        int             `json:"ok"`
	Failed    int             `json:"failed"`
	Fatal     string          `json:"fatal"`
	Mode      string          `json:"mode"`
	Version   string          `json:"version"`
	Ms        int             `json:"ms"`
	Connected int             `json:"connected"`
	ByBackend map[string]int  `json:"byBackend"`
	Sessions  []ClientSession `json:"sessions"`
}

// RunClients runs clients.js to completion and returns its summary.
func RunClients(t testing.TB, o ClientOpts) ClientSummary {
	t.Helper()
	p := Start(t, Command{Name: "clients.js " + o.Mode, Dir: NodeDir(), Bin: Node(), Args: o.Args(), Env: o.Env})
	if err := p.Wait(ClientsRunTimeout); err != nil {
		t.Fatalf("clients.js %v: %v\n%s", o.Args()[1:], err, p.Tail(30))
	}
	line, _ := LastLine(p.Stdout(), "{")
	return parseSummary(t, line, p)
}

func parseSummary(t testing.TB, line string, p *Proc) ClientSummary {
	t.Helper()
	var s ClientSummary
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		t.Fatalf("clients.js summary %q: %v\n%s", RedactSIDs(line), err, p.Tail(30))
	}
	if s.Fatal != "" {
		t.Fatalf("clients.js crashed: %s", s.Fatal)
	}
	return s
}

// Hold is a clients.js run in hold mode, in the background.
type Hold struct {
	*Proc
	Opts ClientOpts
}

// StartHold starts a hold-mode clients.js run; it ends at Stop or after HoldMs (default 120 s).
func StartHold(t testing.TB, o ClientOpts) *Hold {
	t.Helper()
	if o.HoldMs == 0 {
		o.HoldMs = 120000
	}
	p := Start(t, Command{Name: "clients " + o.Mode, Dir: NodeDir(), Bin: Node(), Args: o.Args(), Env: o.Env})
	return &Hold{Proc: p, Opts: o}
}

// WaitProgress waits for a progress event ("all_connected", "all_acked") of every session and
// returns its unix ms.
func (h *Hold) WaitProgress(t testing.TB, event string, timeout time.Duration) int64 {
	t.Helper()
	line, _, err := h.WaitLine(0, timeout, HasEvent(event))
	if err != nil {
		t.Fatalf("clients %s: %v\n%s", h.Opts.Mode, err, h.Tail(20))
	}
	var ev struct {
		Count int   `json:"count"`
		N     int   `json:"n"`
		At    int64 `json:"at"`
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("clients %s: bad progress line %q: %v", h.Opts.Mode, RedactSIDs(line), err)
	}
	if ev.Count != ev.N {
		t.Fatalf("clients %s: %s with only %d of %d sessions", h.Opts.Mode, event, ev.Count, ev.N)
	}
	return ev.At
}

// WaitAckedAfter waits until every session of the run has had an ack later than ms (unix ms) and
// returns how long after ms that was; it reports an error (and returns 0) when timeout passes.
func (h *Hold) WaitAckedAfter(t testing.TB, ms int64, timeout time.Duration) time.Duration {
	t.Helper()
	type acks struct {
		Event        string `json:"event"`
		MinLastAckAt int64  `json:"minLastAckAt"`
	}
	ev, _, err := WaitJSON(h.Proc, 0, timeout, func(a acks) bool { return a.Event == "acks" && a.MinLastAckAt > ms })
	if err != nil {
		t.Errorf("clients %s: not every session was acked after %d: %v", h.Opts.Mode, ms, err)
		return 0
	}
	return time.Duration(ev.MinLastAckAt-ms) * time.Millisecond
}

// Stop ends the hold (SIGINT) and returns the summary.
func (h *Hold) Stop(t testing.TB) ClientSummary {
	t.Helper()
	_ = h.Signal(syscall.SIGINT)
	select {
	case <-h.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("clients %s did not exit after SIGINT", h.Opts.Mode)
	}
	line, ok := LastLine(h.Texts(0), `{"ok"`)
	if !ok {
		t.Fatalf("clients %s printed no summary\n%s", h.Opts.Mode, h.Tail(30))
	}
	return parseSummary(t, line, h.Proc)
}
