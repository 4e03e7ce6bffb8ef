package chaos

import (
	"encoding/json"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// Client behaviour: each session emits an acked event every emitInterval, one at a time; an ack
// that has not come within ackTimeout while the session stayed connected is a lost emit. The
// timeout is the silence a session itself tolerates (pingInterval + pingTimeout): a session that
// stays connected that long without an ack is not waiting for a dead peer.
const (
	emitInterval = 2 * time.Second
	ackTimeout   = pingInterval + pingTimeout
)

// group is one kind of client: a socket.io-client major version and a transport mode.
type group struct {
	version, mode string
	share         float64 // of all clients
}

// groups split the clients: v4 and v2 (socket.io-client@2 speaks Engine.IO 3, which the
// socket.io@4 backends accept with allowEIO3) in every transport mode.
var groups = []group{
	{"4", "polling", 0.17}, {"4", "upgrade", 0.17}, {"4", "websocket", 0.16},
	{"2", "polling", 0.17}, {"2", "upgrade", 0.17}, {"2", "websocket", 0.16},
}

// maxPerDriver bounds the sessions of one node process (its event loop must keep up with their
// timers on a loaded 2-core machine).
const maxPerDriver = 170

// driver is one test/node/soak.js process.
type driver struct {
	*testkit.Proc
	label         string
	version, mode string
	n             int
}

// startDrivers starts the soak.js processes for n clients in total, split over groups; they
// connect once release is called.
func startDrivers(t *testing.T, url string, n int) []*driver {
	t.Helper()
	var ds []*driver
	left := n
	for i, g := range groups {
		k := int(float64(n)*g.share + 0.5)
		if i == len(groups)-1 || k > left {
			k = left
		}
		left -= k
		for part := 0; k > 0; part++ {
			m := min(k, maxPerDriver)
			k -= m
			label := fmt.Sprintf("v%s-%s", g.version, g.mode)
			if part > 0 {
				label += fmt.Sprintf("-%d", part+1)
			}
			args := []string{"soak.js", "--url", url, "--version", g.version, "--mode", g.mode, "--n", strconv.Itoa(m),
				"--emit-ms", ms(emitInterval), "--ack-timeout-ms", ms(ackTimeout), "--concurrency", "20",
				"--label", label, "--wait-stdin", "1"}
			p := testkit.Start(t, testkit.Command{Name: "soak " + label, Dir: testkit.NodeDir(), Bin: testkit.Node(), Args: args, Stdin: true})
			ds = append(ds, &driver{Proc: p, label: label, version: g.version, mode: g.mode, n: m})
		}
	}
	return ds
}

// status is a status line of soak.js.
type status struct {
	Event         string `json:"event"`
	At            int64  `json:"at"`
	N             int    `json:"n"`
	EverConnected int    `json:"everConnected"`
	Connected     int    `json:"connected"`
	MinLastAckAt  int64  `json:"minLastAckAt"`
	Emits         int    `json:"emits"`
	Acks          int    `json:"acks"`
	LostConnected int    `json:"lostConnected"`
}

// last returns the driver's latest status line (zero before the first).
func (d *driver) last() status {
	lines := d.Lines()
	for i := len(lines) - 1; i >= 0; i-- {
		if !lines[i].Stderr {
			continue
		}
		var s status
		if json.Unmarshal([]byte(lines[i].Text), &s) == nil && s.Event == "status" {
			return s
		}
	}
	return status{}
}

// waitStarted waits until every driver has printed a status line (node is up, modules loaded).
func waitStarted(t *testing.T, ds []*driver, timeout time.Duration) {
	t.Helper()
	for _, d := range ds {
		if _, _, err := d.WaitLine(0, timeout, testkit.HasEvent("status")); err != nil {
			t.Fatalf("%s: %v\n%s", d.label, err, d.Tail(20))
		}
	}
}

// release lets the drivers connect their sessions.
func release(t *testing.T, ds []*driver) {
	t.Helper()
	for _, d := range ds {
		if _, err := d.Stdin.Write([]byte("go\n")); err != nil {
			t.Fatalf("%s: %v", d.label, err)
		}
	}
}

// allAckedAfter reports whether every session of every driver is connected and has been acked
// after at (unix ms).
func allAckedAfter(ds []*driver, at int64) bool {
	for _, d := range ds {
		s := d.last()
		if s.Connected != d.n || s.MinLastAckAt <= at {
			return false
		}
		if d.Exited() {
			return false
		}
	}
	return true
}

// waitAcked waits until allAckedAfter(at) and returns how long after at it saw that (the drivers'
// status lines come every 250 ms; the summaries have the exact times), or -1 after timeout, with an
// error naming the drivers still behind.
func waitAcked(t *testing.T, ds []*driver, at time.Time, timeout time.Duration, what string) time.Duration {
	t.Helper()
	if testkit.WaitFor(timeout, func() bool { return allAckedAfter(ds, at.UnixMilli()) }) {
		return time.Since(at)
	}
	for _, d := range ds {
		if s := d.last(); s.Connected != d.n || s.MinLastAckAt <= at.UnixMilli() {
			t.Errorf("%s: %s: %d of %d sessions connected, oldest last ack %d ms before the mark, %v after it (exited: %v)",
				what, d.label, s.Connected, d.n, at.UnixMilli()-s.MinLastAckAt, timeout, d.Exited())
		}
	}
	return -1
}

// summary is the JSON summary soak.js prints when it stops.
type summary struct {
	Label           string           `json:"label"`
	Version         string           `json:"version"`
	Mode            string           `json:"mode"`
	N               int              `json:"n"`
	ConnectedAtEnd  int              `json:"connectedAtEnd"`
	Emits           int              `json:"emits"`
	Acks            int              `json:"acks"`
	LostConnected   int              `json:"lostConnected"`
	LostWithSession int              `json:"lostWithSession"`
	LateAcks        int              `json:"lateAcks"`
	BadAcks         int              `json:"badAcks"`
	MaxAckMs        int64            `json:"maxAckMs"`
	PendingAtEnd    int              `json:"pendingAtEnd"`
	AckHist         map[string]int   `json:"ackHist"`
	ConnectErrors   map[string]int   `json:"connectErrors"`
	CPUMs           int64            `json:"cpuMs"`
	RSSBytes        int64            `json:"rssBytes"`
	Sessions        []sessionSummary `json:"sessions"`
}

type sessionSummary struct {
	ID            int          `json:"id"`
	ConnectedAt   int64        `json:"connectedAt"`
	State         string       `json:"state"`
	FirstBackend  string       `json:"firstBackend"`
	LastBackend   string       `json:"lastBackend"`
	LastAckAt     int64        `json:"lastAckAt"`
	Acks          int          `json:"acks"`
	Emits         int          `json:"emits"`
	Disconnects   []disconnect `json:"disconnects"`
	Reconnects    []reconnect  `json:"reconnects"`
	LostConnected []lostEmit   `json:"lostConnected"`
}

// disconnect is one disconnect of a session; Backend and Transport are those of its last ack.
type disconnect struct {
	At        int64  `json:"at"`
	Reason    string `json:"reason"`
	Backend   string `json:"backend"`
	Transport string `json:"transport"`
}

type reconnect struct {
	At      int64  `json:"at"`
	Backend string `json:"backend"`
	AckAt   int64  `json:"ackAt"`
}

type lostEmit struct {
	SentAt    int64  `json:"sentAt"`
	Transport string `json:"transport"`
	Backend   string `json:"backend"`
}

// stopDrivers ends every driver (SIGINT, once: each stops emitting, waits for the acks still due,
// prints its summary and exits) and returns their summaries.
func stopDrivers(t *testing.T, ds []*driver) []summary {
	t.Helper()
	for _, d := range ds {
		if err := d.Signal(syscall.SIGINT); err != nil {
			t.Fatalf("%s: SIGINT: %v", d.label, err)
		}
	}
	var out []summary
	for _, d := range ds {
		out = append(out, d.summary(t))
	}
	return out
}

// summary waits until a stopped driver exits and returns its summary.
func (d *driver) summary(t *testing.T) summary {
	t.Helper()
	if err := d.Wait(ackTimeout + 20*time.Second); err != nil {
		t.Fatalf("%s: %v\n%s", d.label, err, d.Tail(20))
	}
	line, ok := testkit.LastLine(d.Stdout(), `{"label"`)
	if !ok {
		t.Fatalf("%s printed no summary\n%s", d.label, d.Tail(20))
	}
	var s summary
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		t.Fatalf("%s: summary: %v", d.label, err)
	}
	return s
}
