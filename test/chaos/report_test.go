package chaos

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Causes of a client's disconnect, from the event it fell in and the backend of its last ack.
const (
	causeKill        = "backend killed"
	causeDrain       = "drain deadline"
	causeReplace     = "replica replaced"
	causeUnexplained = "unexplained"
)

// causeGrace extends each event's window: a client notices a broken session up to a ping
// interval + timeout after the fact.
const causeGrace = pingInterval + pingTimeout

// causeOf names the cause of a disconnect at (unix ms) of a session whose last ack came from
// backend over transport, and the event it belongs to (nil: none). A replica that stops closes its
// WebSocket tunnels (a TCP connection cannot move to another process), so a replacement explains
// the disconnects of WebSocket sessions, and no other: a polling session's requests go to either
// replica, and each routes its sid by the tag.
func causeOf(events []*event, at int64, backend, transport string) (string, *event) {
	var during *event
	for i := len(events) - 1; i >= 0; i-- { // the latest event first: windows overlap by causeGrace
		e := events[i]
		if at < e.start.UnixMilli() || at > e.end.Add(causeGrace).UnixMilli() {
			continue
		}
		switch {
		case e.kind == kindKill && backend == e.target:
			return causeKill, e
		case e.kind == kindDrain && backend == e.target:
			return causeDrain, e
		case e.kind == kindReplace && transport == "websocket":
			return causeReplace, e
		}
		if during == nil {
			during = e
		}
	}
	return causeUnexplained, during
}

// outage is one disconnect of a session and how it ended.
type outage struct {
	group     string
	cause     string
	event     *event
	at        int64
	reason    string
	backend   string
	transport string
	backAt    int64 // first ack after the reconnect; 0: never
}

// outages lists every disconnect of every session with its cause and recovery.
func outages(sums []summary, events []*event) []outage {
	var out []outage
	for _, s := range sums {
		for _, ss := range s.Sessions {
			for _, d := range ss.Disconnects {
				o := outage{group: groupOf(s), at: d.At, reason: d.Reason, backend: d.Backend, transport: d.Transport}
				o.cause, o.event = causeOf(events, d.At, d.Backend, d.Transport)
				for _, r := range ss.Reconnects {
					if r.At >= d.At && r.AckAt > 0 {
						o.backAt = r.AckAt
						break
					}
				}
				out = append(out, o)
			}
		}
	}
	return out
}

func groupOf(s summary) string { return "v" + s.Version + " " + s.Mode }

// hist is a merged ack latency histogram (soak.js buckets: b >= 1 holds [2^((b-1)/4), 2^(b/4)) ms).
type hist map[int]int

func (h hist) add(m map[string]int) {
	for k, v := range m {
		if b, err := strconv.Atoi(k); err == nil {
			h[b] += v
		}
	}
}

// quantile returns the upper bound in ms of the bucket holding the q-quantile.
func (h hist) quantile(q float64) float64 {
	total := 0
	for _, v := range h {
		total += v
	}
	if total == 0 {
		return 0
	}
	keys := make([]int, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	need := int(math.Ceil(q * float64(total)))
	seen := 0
	for _, k := range keys {
		seen += h[k]
		if seen >= need {
			if k == 0 {
				return 1
			}
			return math.Pow(2, float64(k)/4)
		}
	}
	return math.Pow(2, float64(keys[len(keys)-1])/4)
}

// emitRow is one line of the emits table.
type emitRow struct {
	group                             string
	clients, emits, acks, lostSession int
	lostConnected, late, bad          int
	h                                 hist
	max                               int64
}

func emitRows(sums []summary) []emitRow {
	byGroup := map[string]*emitRow{}
	var order []string
	total := &emitRow{group: "all", h: hist{}}
	for _, s := range sums {
		g := groupOf(s)
		r := byGroup[g]
		if r == nil {
			r = &emitRow{group: g, h: hist{}}
			byGroup[g] = r
			order = append(order, g)
		}
		for _, x := range []*emitRow{r, total} {
			x.clients += s.N
			x.emits += s.Emits
			x.acks += s.Acks
			x.lostSession += s.LostWithSession
			x.lostConnected += s.LostConnected
			x.late += s.LateAcks
			x.bad += s.BadAcks
			x.h.add(s.AckHist)
			x.max = max(x.max, s.MaxAckMs)
		}
	}
	var out []emitRow
	for _, g := range order {
		out = append(out, *byGroup[g])
	}
	return append(out, *total)
}

// report is what the soak prints at the end, and what docs/chaos.md keeps.
type report struct {
	clients   int
	chaos     time.Duration // from the first event's start to the last one's end
	total     time.Duration // the whole test
	connectIn time.Duration // release to every session acked once
	backIn    time.Duration // last event's end to every session acked again
	sums      []summary
	events    []*event
	outages   []outage
	slots     []*slot
	final     []resources
	settled   []time.Duration
	zeroIn    time.Duration // clients gone to every session count 0
	busy      float64       // the machine's CPUs busy during the chaos, percent
	unknown   sidUnknownStats
	errLines  int
	errExpl   int
	warns     map[string]int
	front     map[string]int // HAProxy's abnormal connections during the chaos, by server and state
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		return "not reached"
	}
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func msDur(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// markdown renders the report as Markdown tables.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d clients (%s), %s of chaos (%d events), %s in all; every session connected and acked %s after the start, again %s after the last event. The machine's %d CPUs were %.0f%% busy during the chaos.\n\n",
		r.clients, clientMix(r.sums), fmtDur(r.chaos), len(r.events), fmtDur(r.total), fmtDur(r.connectIn), fmtDur(r.backIn), runtime.NumCPU(), r.busy)

	b.WriteString("| clients | sessions | emits | acked | lost with their session | lost while connected | late acks | ack p50 | ack p99 | ack max |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, e := range emitRows(r.sums) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | **%d** | %d | %.0f ms | %.0f ms | %d ms |\n",
			e.group, e.clients, e.emits, e.acks, e.lostSession, e.lostConnected, e.late, e.h.quantile(0.5), e.h.quantile(0.99), e.max)
	}

	b.WriteString("\n| event | target | at | measured | disconnects | all back after | proxies' \"Session ID unknown\" |\n")
	b.WriteString("|---|---|---:|---|---:|---:|---:|\n")
	t0 := r.events[0].start
	for _, e := range r.events {
		n, back := 0, int64(0)
		for _, o := range r.outages {
			if o.event == e && o.cause != causeUnexplained {
				n++
				if o.backAt > 0 {
					back = max(back, o.backAt-e.start.UnixMilli())
				}
			}
		}
		backS := "-"
		if n > 0 {
			backS = fmtDur(msDur(back))
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f s | %s | %d | %s | %.0f |\n", e.kind, e.target, e.start.Sub(t0).Seconds(),
			e.marksText(), n, backS, e.sidUnknown)
	}

	b.WriteString("\n| reconnects by cause | count | by client reason | disconnect to next ack p50 | max | never back |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|\n")
	for _, c := range []string{causeKill, causeReplace, causeDrain, causeUnexplained} {
		var lat []int64
		reasons := map[string]int{}
		n, never := 0, 0
		for _, o := range r.outages {
			if o.cause != c {
				continue
			}
			n++
			reasons[o.reason]++
			if o.backAt == 0 {
				never++
			} else {
				lat = append(lat, o.backAt-o.at)
			}
		}
		slices.Sort(lat)
		p50, mx := "-", "-"
		if len(lat) > 0 {
			p50, mx = fmtDur(msDur(lat[len(lat)/2])), fmtDur(msDur(lat[len(lat)-1]))
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %d |\n", c, n, countsText(reasons), p50, mx, never)
	}

	b.WriteString("\n| replica | processes | baseline | after the clients left | limit | settled in |\n")
	b.WriteString("|---|---:|---|---|---|---:|\n")
	for i, s := range r.slots {
		fmt.Fprintf(&b, "| %s | %d | %v | %v | %v | %s |\n", s.name, len(s.gens), s.baseline, r.final[i], s.baseline.limit(), fmtDur(r.settled[i]))
	}

	u := r.unknown
	fmt.Fprintf(&b, "\nBackends' \"Session ID unknown\" (code 1): %d for sessions of the killed backend; %d to client requests that came after their session's close; %d once the clients were leaving; otherwise **%d** to clients, **%d** to the replicas' drain closes. Other connection errors of the backends: %s.\n",
		u.killed, u.raced, u.leaving, u.clients, u.drainCloses, countsText(u.other))
	fmt.Fprintf(&b, "Replica error-level log lines: %d (%d explained by the kill). Warnings: %s.\n", r.errLines, r.errExpl, countsText(r.warns))
	fmt.Fprintf(&b, "HAProxy's abnormal connections during the chaos, by replica and termination state: %s.\n", countsText(r.front))
	fmt.Fprintf(&b, "Session counts back to 0 in every replica %s after the clients left. Client connect errors: %s.\n",
		fmtDur(r.zeroIn), countsText(connectErrors(r.sums)))
	return b.String()
}

// marksText lists the event's marks: what was reached how long after its start.
func (e *event) marksText() string {
	var marks []string
	for _, m := range e.marks {
		if m.after == 0 {
			marks = append(marks, m.what)
			continue
		}
		marks = append(marks, fmt.Sprintf("%s %s", m.what, fmtDur(m.after)))
	}
	return strings.Join(marks, "; ")
}

func clientMix(sums []summary) string {
	var parts []string
	for _, e := range emitRows(sums) {
		if e.group != "all" {
			parts = append(parts, fmt.Sprintf("%d %s", e.clients, e.group))
		}
	}
	return strings.Join(parts, ", ")
}

func connectErrors(sums []summary) map[string]int {
	m := map[string]int{}
	for _, s := range sums {
		for k, v := range s.ConnectErrors {
			m[k] += v
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func countsText(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return orNone(strings.Join(parts, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
