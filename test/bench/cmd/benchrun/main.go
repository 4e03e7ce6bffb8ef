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
	ScaleLadder  []int // one pass per proxy: memory and CPU per idle session up to the file limit
	ScaleWindow  time.Duration
	NodeSessions int // socket.io-client workload: sessions per transport
	NodeRounds   int // and acked emits per session
	NodeReps     int // repetitions that run the socket.io-client workload (0: all)
	TailSessions int // tail sessions per path and repetition (io(url), one acked emit)
	TailConc     int // tail sessions in flight
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
		HoldLadder: []int{500, 1000, 2000, 4000}, ScaleLadder: []int{1000, 2000, 4000, 8000, 16000, 50000},
		ScaleWindow: 10 * time.Second, NodeSessions: 150, NodeRounds: 20, TailSessions: 600, TailConc: 10,
		LatSessions: 50, LatRates: []int{500, 1000, 2000, 4000, 8000, 16000}, LatDuration: 1500 * time.Millisecond,
		HSSessions: 2000, Big: 100000, BigHold: 35 * time.Second,
	}
}

func quickPlan() plan {
	return plan{
		Reps: 2, PollSessions: 150, PollRounds: 20, WSSessions: 150, WSEmits: 20, Payload: "hello, world",
		HoldLadder: []int{500, 2000}, ScaleLadder: []int{1000, 4000}, ScaleWindow: 3 * time.Second,
		NodeSessions: 150, NodeRounds: 20, NodeReps: 1, TailSessions: 150, TailConc: 10,
		LatSessions: 50, LatRates: []int{1000, 4000}, LatDuration: time.Second,
		HSSessions: 1000,
	}
}

func main() {
	var o struct {
		sioproxy, backend, sioload, node, out, charts, work, profile, ab string
		quick                                                            bool
		reps, big, tail, tailConc                                        int
	}
	flag.StringVar(&o.sioproxy, "sioproxy", "", "sioproxy binary")
	flag.StringVar(&o.backend, "backend", "", "benchbackend binary")
	flag.StringVar(&o.sioload, "sioload", "", "sioload binary")
	flag.StringVar(&o.node, "node", "test/node", "directory of backend.js and benchclients.js, with node_modules installed")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "report to write")
	flag.StringVar(&o.charts, "charts", "docs/bench", "directory of the PNG charts")
	flag.StringVar(&o.work, "work", "", "scratch directory for configs and logs (default: a new temp dir)")
	flag.BoolVar(&o.quick, "quick", false, "small workloads, 2 repetitions, no 100k test (about 3 minutes)")
	flag.IntVar(&o.reps, "reps", 0, "override the number of repetitions")
	flag.IntVar(&o.big, "big", -1, "override the session count of the scale test (0 skips it)")
	flag.StringVar(&o.ab, "ab", "", "instead of the comparison: A/B variants of sioproxy, 'name=binary[:ENV=value...];...' (results in -work)")
	flag.StringVar(&o.profile, "profile", "", "instead of the comparison: profile the proxies under the benchmark's workloads into this directory (profile.md)")
	flag.IntVar(&o.tailConc, "tail-conc", 0, "tail sessions in flight (default 10)")
	flag.IntVar(&o.tail, "tail", 0, "tail sessions per path over all repetitions (e.g. 3000; default 600 per repetition, 150 with -quick)")
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
	if o.tailConc > 0 {
		pl.TailConc = o.tailConc
	}
	if o.tail > 0 {
		pl.TailSessions = (o.tail + pl.Reps - 1) / pl.Reps
	}
	pl.ScaleLadder = capLadder(pl.ScaleLadder, fdCap())
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
	if o.ab != "" {
		vs, err := parseVariants(o.ab)
		if err != nil {
			fatal(err)
		}
		if err := runAB(ctx, vs, o.backend, o.sioload, o.node, pl, o.work); err != nil {
			fatal(err)
		}
		return
	}
	if o.profile != "" {
		if err := runProfile(ctx, o.sioproxy, o.backend, o.node, pl, o.profile); err != nil {
			fatal(err)
		}
		logf("wrote %s", filepath.Join(o.profile, "profile.md"))
		return
	}
	if _, err := os.Stat(filepath.Join(o.node, "node_modules", "socket.io-client")); err != nil {
		fatal(fmt.Errorf("socket.io-client not installed in %s (cd test/node && npm ci): %w", o.node, err))
	}
	b := &bench{plan: pl, sioloadBin: o.sioload, nodeDir: o.node, quick: o.quick, work: o.work}
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
		Plan  plan
		Reps  []map[string]*repResult
		Scale map[string][]scaleStep
		Big   *bigResult
	}{pl, b.reps, b.scale, b.big}, "", " "); err == nil {
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
	nodeDir    string
	quick      bool
	work       string
	backend    *peer
	direct     *peer // the backend itself, for baseline latency
	peers      []*peer
	fresh      map[string]func(dir string) (*peer, error) // starts a new instance (memory runs)
	freshN     int
	nodeBE     *nodeBackend     // real socket.io@4 server for the socket.io-client workloads
	nodePeers  map[string]*peer // each proxy in front of nodeBE; "direct" is nodeBE itself
	reps       []map[string]*repResult
	scale      map[string][]scaleStep
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
	Node          *nodeWorkload // socket.io-client workload (nil for direct)
	Tail          *tailRun
}

// latPoint is one fixed-rate latency measurement.
type latPoint struct {
	Rate     int     // offered emits/s
	Achieved float64 // acked emits/s
	P50, P99 float64 // ms
	P999     float64 // ms
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
	ndir := filepath.Join(b.work, "node")
	if err := os.MkdirAll(ndir, 0o755); err != nil {
		return err
	}
	if b.nodeBE, err = startNodeBackend(b.nodeDir, ndir); err != nil {
		return err
	}
	nb := b.nodeBE.URL
	b.nodePeers = map[string]*peer{"direct": b.nodeBE.peer}
	starts := map[string]func() (*peer, error){
		"sioproxy": func() (*peer, error) { return startSioproxy(sioproxyBin, []string{nb}, 1, ndir) },
		"haproxy":  func() (*peer, error) { return startHAProxy(nb, ndir) },
		"nginx":    func() (*peer, error) { return startNginx(nb, ndir) },
	}
	for _, name := range []string{"sioproxy", "haproxy", "nginx"} {
		p, err := starts[name]()
		if err != nil {
			return err
		}
		b.nodePeers[name] = p
	}
	logf("socket.io@4 backend %s; sioproxy %s, haproxy %s, nginx %s in front of it", nb,
		b.nodePeers["sioproxy"].URL, b.nodePeers["haproxy"].URL, b.nodePeers["nginx"].URL)
	return nil
}

func (b *bench) teardown() {
	for _, p := range b.peers {
		p.stop()
	}
	if b.backend != nil {
		b.backend.stop()
	}
	for name, p := range b.nodePeers {
		if name != "direct" {
			p.stop()
		}
	}
	if b.nodeBE != nil {
		b.nodeBE.stop()
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
	for _, name := range tailPaths {
		if _, err := runTail(ctx, b.nodeDir, b.nodeBE, b.nodePeers[name].URL, 20, pl.TailConc); err != nil {
			return fmt.Errorf("%s socket.io-client warm-up: %w", name, err)
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
			logf("rep %d/%d %-8s poll %.3f s/10k req, ws %.3f s/10k msg, mem %.1f KB/session, hs %.0f/s, lat p99 %.2f p99.9 %.2f ms @ %d/s",
				rep+1, pl.Reps, p.Name, r.PollCPUPer10k, r.WSCPUPer10k, memAt(r.Hold, 2000), r.Handshakes,
				lastLat(r.Lat).P99, lastLat(r.Lat).P999, lastLat(r.Lat).Rate)
		}
		lat, err := b.latency(ctx, b.direct)
		if err != nil {
			return err
		}
		res["direct"] = &repResult{Lat: lat}
		if err := b.nodeRep(ctx, rep, res); err != nil {
			return err
		}
		b.reps = append(b.reps, res)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	b.scale = map[string][]scaleStep{}
	for _, p := range b.peers {
		steps, err := b.scaleFresh(ctx, p.Name, pl.ScaleLadder, pl.ScaleWindow, 256)
		if err != nil {
			return err
		}
		b.scale[p.Name] = steps
	}
	return nil
}

// tailPaths are the paths of the tail benchmark, in the order of the report.
var tailPaths = []string{"direct", "nginx", "haproxy", "sioproxy"}

// nodeRep runs the socket.io-client workloads of one repetition: the CPU workload through each
// proxy and the tail sessions through every path (direct included), in a rotating order.
func (b *bench) nodeRep(ctx context.Context, rep int, res map[string]*repResult) error {
	pl := b.plan
	for i := range b.peers {
		if pl.NodeReps > 0 && rep >= pl.NodeReps {
			break
		}
		name := b.peers[(i+rep)%len(b.peers)].Name
		w, err := runNodeWorkload(ctx, b.nodeDir, b.nodePeers[name], pl)
		if err != nil {
			return err
		}
		res[name].Node = &w
		logf("rep %d/%d %-8s socket.io-client workload: proxy CPU %.2f s polling + %.2f s websocket = %.2f s, %d errors",
			rep+1, pl.Reps, name, w.PollCPU, w.WSCPU, w.PollCPU+w.WSCPU, w.Errors)
	}
	for i := range tailPaths {
		name := tailPaths[(i+rep)%len(tailPaths)]
		t, err := runTail(ctx, b.nodeDir, b.nodeBE, b.nodePeers[name].URL, pl.TailSessions, pl.TailConc)
		if err != nil {
			return fmt.Errorf("rep %d tail %s: %w", rep+1, name, err)
		}
		res[name].Tail = &t
		logf("rep %d/%d %-8s tail: %d of %d first acks > 50 ms (%d raced, max %.0f ms), first GET before CONNECT POST at the backend %d of %d, CONNECT ack before POST ok %d, ack p50 %.2f p99 %.2f ms",
			rep+1, pl.Reps, name, t.Slow, t.N, t.SlowRaced, t.Ack.Max, t.GetFirst, t.Ordered, t.ConnectBeforeDrain, t.Ack.P50, t.Ack.P99)
	}
	return nil
}

func lastLat(pts []latPoint) latPoint {
	if len(pts) == 0 {
		return latPoint{}
	}
	return pts[len(pts)-1]
}

// loopbackSources returns 127.0.0.1 .. 127.0.0.n, source addresses for many client connections.
func loopbackSources(n int) []net.IP {
	var out []net.IP
	for i := 1; i <= n; i++ {
		out = append(out, net.IPv4(127, 0, 0, byte(i)))
	}
	return out
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
			P999: s.Ack.P999, Failed: s.Sessions.Failed > 0})
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
	Sock, SockBase                sockstat
	Slab, SlabBase                int64 // kernel socket + epoll slab bytes, system-wide
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
	sources := loopbackSources(nSources)
	base, err := readUsage(sp.pids())
	if err != nil {
		return nil, err
	}
	r := &bigResult{Target: pl.Big, Backends: nBackends, Sources: nSources, BaseKB: base.RSSKB, Wanted: pl.BigWanted}
	if r.SockBase, err = readSockstat(); err != nil {
		return nil, err
	}
	r.SlabBase = readSlab()
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
	if r.Sock, err = readSockstat(); err != nil {
		return nil, err
	}
	r.Slab = readSlab()
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
