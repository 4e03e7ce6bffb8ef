// Command benchrun measures sioproxy side by side with HAProxy and nginx on the same machine, in
// one run, and writes BENCHMARKS.md and PNG charts. test/bench/run.sh builds and runs it.
//
//	benchrun -sioproxy bin -backend bin -sioload bin -out BENCHMARKS.md -charts docs/bench [-quick]
//
// Every workload goes through each proxy in turn (interleaved, repeated -reps times) against one
// shared Go Socket.IO backend, and the proxies' CPU and resident memory are read from /proc.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// plan is the size of every workload.
type plan struct {
	Reps         int
	PollSessions int
	PollRounds   int
	WSSessions   int
	WSEmits      int
	Payload      string
	HoldLadder   []int // idle sessions held, per repetition (memory vs sessions)
	MaxLadder    []int // one pass per proxy: how many sessions it holds
	LatSessions  int
	LatRates     []int // emits per second, all sessions together
	LatDuration  time.Duration
	HSSessions   int
	Big          int // sessions through one sioproxy for the scale test (0: skip)
	BigWanted    int // Big before the file limit capped it (0: not capped)
	BigHold      time.Duration
}

func fullPlan() plan {
	return plan{
		Reps: 5, PollSessions: 150, PollRounds: 50, WSSessions: 150, WSEmits: 100, Payload: "hello, world",
		HoldLadder: []int{500, 1000, 2000, 4000}, MaxLadder: []int{8000, 16000, 50000},
		LatSessions: 50, LatRates: []int{500, 1000, 2000, 4000, 8000, 16000}, LatDuration: 1500 * time.Millisecond,
		HSSessions: 2000, Big: 100000, BigHold: 35 * time.Second,
	}
}

func quickPlan() plan {
	return plan{
		Reps: 2, PollSessions: 150, PollRounds: 20, WSSessions: 150, WSEmits: 20, Payload: "hello, world",
		HoldLadder: []int{500, 2000}, MaxLadder: []int{5000},
		LatSessions: 50, LatRates: []int{1000, 4000}, LatDuration: time.Second,
		HSSessions: 1000,
	}
}

func main() {
	var o struct {
		sioproxy, backend, sioload, out, charts, work string
		quick                                         bool
		reps, big                                     int
	}
	flag.StringVar(&o.sioproxy, "sioproxy", "", "sioproxy binary")
	flag.StringVar(&o.backend, "backend", "", "benchbackend binary")
	flag.StringVar(&o.sioload, "sioload", "", "sioload binary")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "report to write")
	flag.StringVar(&o.charts, "charts", "docs/bench", "directory of the PNG charts")
	flag.StringVar(&o.work, "work", "", "scratch directory for configs and logs (default: a new temp dir)")
	flag.BoolVar(&o.quick, "quick", false, "small workloads, 2 repetitions, no 100k test (about 3 minutes)")
	flag.IntVar(&o.reps, "reps", 0, "override the number of repetitions")
	flag.IntVar(&o.big, "big", -1, "override the session count of the scale test (0 skips it)")
	flag.Parse()
	pl := fullPlan()
	if o.quick {
		pl = quickPlan()
	}
	if o.reps > 0 {
		pl.Reps = o.reps
	}
	if o.big >= 0 {
		pl.Big = o.big
	}
	pl.MaxLadder = capLadder(pl.MaxLadder, fdCap())
	if pl.Big > fdCap() {
		logf("scale test: the file limit (RLIMIT_NOFILE) allows %d sessions, not %d", fdCap(), pl.Big)
		pl.BigWanted, pl.Big = pl.Big, fdCap()
	}
	if o.work == "" {
		d, err := os.MkdirTemp("", "sioproxy-bench-")
		if err != nil {
			fatal(err)
		}
		o.work = d
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{plan: pl, sioloadBin: o.sioload, quick: o.quick, work: o.work}
	start := time.Now()
	if err := b.setup(o.sioproxy, o.backend); err != nil {
		b.teardown()
		fatal(err)
	}
	err := b.run(ctx)
	if err == nil && pl.Big > 0 {
		b.big, err = runBig(ctx, o.sioproxy, o.backend, pl, o.work)
	}
	b.teardown()
	if err != nil {
		fatal(err)
	}
	b.elapsed = time.Since(start)
	if raw, err := json.MarshalIndent(struct {
		Plan    plan
		Reps    []map[string]*repResult
		MaxHeld map[string][]holdStep
		Big     *bigResult
	}{pl, b.reps, b.maxHeld, b.big}, "", " "); err == nil {
		path := filepath.Join(o.work, "results.json")
		if os.WriteFile(path, raw, 0o644) == nil {
			logf("raw results: %s", path)
		}
	}
	if err := writeReport(b, o.out, o.charts); err != nil {
		fatal(err)
	}
	logf("wrote %s and charts in %s (%v)", o.out, o.charts, b.elapsed.Round(time.Second))
}

// fdCap is how many proxied sessions the file limit allows: a proxy needs two descriptors per
// session (client and backend side), the load generator one.
func fdCap() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 1000
	}
	return (int(r.Cur) - 1000) / 2
}

// capLadder drops the steps above max and ends the ladder at max when it went beyond.
func capLadder(l []int, max int) []int {
	var out []int
	for _, n := range l {
		if n >= max {
			return append(out, max)
		}
		out = append(out, n)
	}
	return out
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchrun:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// bench holds the processes and the results of one run.
type bench struct {
	plan       plan
	sioloadBin string
	quick      bool
	work       string
	backend    *peer
	direct     *peer // the backend itself, for baseline latency
	peers      []*peer
	fresh      map[string]func(dir string) (*peer, error) // starts a new instance (memory runs)
	freshN     int
	reps       []map[string]*repResult
	maxHeld    map[string][]holdStep
	big        *bigResult
	elapsed    time.Duration
}

// repResult is what one repetition measured through one peer.
type repResult struct {
	PollCPUPer10k float64
	PollRequests  int64
	PollErrors    int64
	WSCPUPer10k   float64
	WSMessages    int64
	WSErrors      int64
	Hold          []holdStep
	Lat           []latPoint
	Handshakes    float64
}

// latPoint is one fixed-rate latency measurement.
type latPoint struct {
	Rate     int     // offered emits/s
	Achieved float64 // acked emits/s
	P50, P99 float64 // ms
	Failed   bool
}

func (b *bench) setup(sioproxyBin, backendBin string) error {
	be, urls, err := startBackend(backendBin, 1, 10*time.Second, b.work)
	if err != nil {
		return err
	}
	b.backend = be
	b.direct = &peer{Name: "direct", URL: urls[0], cmd: be.cmd}
	b.fresh = map[string]func(string) (*peer, error){
		"sioproxy": func(dir string) (*peer, error) { return startSioproxy(sioproxyBin, urls, 1, dir) },
		"haproxy":  func(dir string) (*peer, error) { return startHAProxy(urls[0], dir) },
		"nginx":    func(dir string) (*peer, error) { return startNginx(urls[0], dir) },
	}
	for _, name := range []string{"sioproxy", "haproxy", "nginx"} {
		p, err := b.fresh[name](b.work)
		if err != nil {
			return err
		}
		b.peers = append(b.peers, p)
	}
	sp, hp, np := b.peers[0], b.peers[1], b.peers[2]
	logf("backend %s; %s %s, %s %s, %s %s; work dir %s", urls[0], sp.Name, sp.URL, hp.Name, hp.URL, np.Name, np.URL, b.work)
	return nil
}

func (b *bench) teardown() {
	for _, p := range b.peers {
		p.stop()
	}
	if b.backend != nil {
		b.backend.stop()
	}
}

func (b *bench) run(ctx context.Context) error {
	pl := b.plan
	// Warm every path once (connection pools, lazily built state) before measuring.
	for _, p := range b.peers {
		runPolling(p.URL, 10, 2, pl.Payload)
		if _, err := runWebSocket(ctx, p, p.URL, 10, 2, pl.Payload); err != nil {
			return fmt.Errorf("%s warm-up: %w", p.Name, err)
		}
	}
	for rep := 0; rep < pl.Reps; rep++ {
		res := map[string]*repResult{}
		// Rotate the order each repetition so no proxy always runs first.
		order := append(append([]*peer{}, b.peers[rep%len(b.peers):]...), b.peers[:rep%len(b.peers)]...)
		for _, p := range order {
			r, err := b.measure(ctx, p)
			if err != nil {
				return fmt.Errorf("rep %d %s: %w", rep+1, p.Name, err)
			}
			res[p.Name] = r
			logf("rep %d/%d %-8s poll %.3f s/10k req, ws %.3f s/10k msg, mem %.1f KB/session, hs %.0f/s",
				rep+1, pl.Reps, p.Name, r.PollCPUPer10k, r.WSCPUPer10k, memAt(r.Hold, 2000), r.Handshakes)
		}
		lat, err := b.latency(ctx, b.direct)
		if err != nil {
			return err
		}
		res["direct"] = &repResult{Lat: lat}
		b.reps = append(b.reps, res)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b.maxHeld = map[string][]holdStep{}
	for _, p := range b.peers {
		steps, err := b.holdFresh(ctx, p.Name, pl.MaxLadder, 3*time.Second, 256)
		if err != nil {
			return err
		}
		b.maxHeld[p.Name] = steps
		if len(steps) > 0 {
			last := steps[len(steps)-1]
			logf("max held %-8s %d sessions (%d failed), %.1f KB/session", p.Name, last.Sessions, last.Failed, last.PerSessionKB())
		}
	}
	return nil
}

// measure runs every workload once through p.
func (b *bench) measure(ctx context.Context, p *peer) (*repResult, error) {
	pl := b.plan
	r := &repResult{}
	before, err := readUsage(p.pids())
	if err != nil {
		return nil, err
	}
	pr := runPolling(p.URL, pl.PollSessions, pl.PollRounds, pl.Payload)
	after, err := readUsage(p.pids())
	if err != nil {
		return nil, err
	}
	r.PollRequests, r.PollErrors = pr.Requests, pr.Errors
	r.PollCPUPer10k = (after.CPU - before.CPU) / float64(pr.Requests) * 1e4
	ws, err := runWebSocket(ctx, p, p.URL, pl.WSSessions, pl.WSEmits, pl.Payload)
	if err != nil {
		return nil, err
	}
	r.WSMessages, r.WSErrors = ws.Messages, ws.Errors
	r.WSCPUPer10k = ws.CPU / float64(ws.Messages) * 1e4
	if r.Hold, err = b.holdFresh(ctx, p.Name, pl.HoldLadder, 2*time.Second, 128); err != nil {
		return nil, err
	}
	if r.Lat, err = b.latency(ctx, p); err != nil {
		return nil, err
	}
	hs, err := sioload(ctx, b.sioloadBin, "-url", p.URL, "-mode", "websocket", "-sessions", fmt.Sprint(pl.HSSessions),
		"-ramp", "1000000", "-rate", "0", "-duration", "100ms", "-timeout", "20s")
	if err != nil {
		return nil, fmt.Errorf("handshakes: %w", err)
	}
	r.Handshakes = hs.HandshakesPerSec
	return r, nil
}

// holdFresh starts a new instance of the named proxy, warms it with a few sessions, runs the hold
// ladder through it and stops it: memory is measured without other workloads' leftovers.
func (b *bench) holdFresh(ctx context.Context, name string, ladder []int, settle time.Duration, par int) ([]holdStep, error) {
	b.freshN++
	dir := filepath.Join(b.work, fmt.Sprintf("fresh-%d", b.freshN))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p, err := b.fresh[name](dir)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	d := &dialer{base: p.URL}
	warm, _ := d.openMany(ctx, 20, 20)
	closeAll(warm)
	time.Sleep(500 * time.Millisecond)
	return runHold(ctx, p, d, ladder, settle, par)
}

// latency runs sioload at each fixed rate of the plan through p.
func (b *bench) latency(ctx context.Context, p *peer) ([]latPoint, error) {
	pl := b.plan
	var pts []latPoint
	for _, rate := range pl.LatRates {
		per := float64(rate) / float64(pl.LatSessions)
		s, err := sioload(ctx, b.sioloadBin, "-url", p.URL, "-mode", "websocket", "-sessions", fmt.Sprint(pl.LatSessions),
			"-ramp", "1000", "-rate", fmt.Sprint(per), "-payload", "16", "-duration", pl.LatDuration.String(), "-timeout", "5s")
		if err != nil {
			return nil, fmt.Errorf("latency %s at %d/s: %w", p.Name, rate, err)
		}
		pts = append(pts, latPoint{Rate: rate, Achieved: s.Emits.SteadyPerS, P50: s.Ack.P50, P99: s.Ack.P99,
			Failed: s.Sessions.Failed > 0})
	}
	return pts, nil
}

// bigResult is the scale test: Target sessions through one sioproxy.
type bigResult struct {
	Target, Opened, Alive, Failed int
	RSSKB, BaseKB                 int64
	OpenSeconds                   float64
	Held                          time.Duration
	CPU                           float64 // proxy CPU seconds while holding (heartbeats only)
	Backends                      int
	Sources                       int
	FDs                           int // open descriptors of sioproxy while holding
	Wanted                        int // the session count asked for, when the file limit capped it
}

// runBig opens plan.Big WebSocket sessions through a fresh sioproxy (GOMAXPROCS unset) in front of
// four backends, from 16 source addresses, holds them with heartbeats flowing, and reads RSS.
func runBig(ctx context.Context, sioproxyBin, backendBin string, pl plan, work string) (*bigResult, error) {
	const nBackends, nSources = 4, 16
	dir := filepath.Join(work, "big")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	be, urls, err := startBackend(backendBin, nBackends, 25*time.Second, dir)
	if err != nil {
		return nil, err
	}
	defer be.stop()
	sp, err := startSioproxy(sioproxyBin, urls, 2, dir)
	if err != nil {
		return nil, err
	}
	defer sp.stop()
	var sources []net.IP
	for i := 1; i <= nSources; i++ {
		sources = append(sources, net.IPv4(127, 0, 0, byte(i)))
	}
	base, err := readUsage(sp.pids())
	if err != nil {
		return nil, err
	}
	r := &bigResult{Target: pl.Big, Backends: nBackends, Sources: nSources, BaseKB: base.RSSKB, Wanted: pl.BigWanted}
	logf("scale test: opening %d sessions through sioproxy", pl.Big)
	start := time.Now()
	octx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	conns, failed := (&dialer{base: sp.URL, sources: sources}).openMany(octx, pl.Big, 512)
	defer closeAll(conns)
	r.OpenSeconds = time.Since(start).Seconds()
	r.Opened, r.Failed = len(conns), failed
	logf("scale test: %d open, %d failed in %.0fs; holding %v", r.Opened, r.Failed, r.OpenSeconds, pl.BigHold)
	u0, err := readUsage(sp.pids())
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(pl.BigHold):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	u1, err := readUsage(sp.pids())
	if err != nil {
		return nil, err
	}
	r.Held, r.RSSKB, r.CPU = pl.BigHold, u1.RSSKB, u1.CPU-u0.CPU
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", sp.cmd.Process.Pid)); err == nil {
		r.FDs = len(fds)
	}
	for _, c := range conns {
		select {
		case <-c.Done():
		default:
			r.Alive++
		}
	}
	logf("scale test: %d alive after %v, RSS %d MB", r.Alive, pl.BigHold, r.RSSKB>>10)
	return r, nil
}
