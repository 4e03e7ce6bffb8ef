package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The profile mode (-profile DIR) explains the CPU and memory figures instead of measuring them
// side by side: it runs the benchmark's own polling and WebSocket workloads through each proxy
// while counting syscalls (perf trace), profiles sioproxy (pprof CPU, allocations, an execution
// trace for goroutine parks), and accounts for the memory of idle parked tunnels. It writes the
// raw profiles and DIR/profile.md.

// profileRun is one workload through one proxy.
type profileRun struct {
	Proxy, Workload string
	Units           int64  // HTTP requests (polling) or WebSocket messages
	Unit            string // "request" or "message"
	CPU             float64
	Syscalls        []syscallCount
	Parks           map[string]int64 // goroutine blocks by reason (sioproxy, execution trace)
	ParkUnits       int64            // units during the trace
}

type syscallCount struct {
	Name           string
	Calls, Errors  int64
	TotalMs        float64
	PerUnit, ErrPU float64
}

func runProfile(ctx context.Context, sioproxyBin, backendBin, nodeDir string, pl plan, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	be, urls, err := startBackend(backendBin, 1, 10*time.Second, dir)
	if err != nil {
		return err
	}
	defer be.stop()
	adminPort, err := freePort()
	if err != nil {
		return err
	}
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	sp, err := startSioproxyArgs(sioproxyBin, urls, 1, dir, nil, "-admin-listen", strings.TrimPrefix(admin, "http://"))
	if err != nil {
		return err
	}
	defer sp.stop()
	hp, err := startHAProxy(urls[0], dir)
	if err != nil {
		return err
	}
	defer hp.stop()
	np, err := startNginx(urls[0], dir)
	if err != nil {
		return err
	}
	defer np.stop()
	peers := []*peer{sp, hp, np}
	for _, p := range peers {
		runPolling(p.URL, 10, 2, pl.Payload)
		if _, err := runWebSocket(ctx, p, p.URL, 10, 2, pl.Payload); err != nil {
			return fmt.Errorf("%s warm-up: %w", p.Name, err)
		}
	}
	havePerf := exec.Command("perf", "trace", "-s", "true").Run() == nil
	if !havePerf {
		logf("profile: perf trace is not usable here; no syscall counts")
	}
	var runs []profileRun
	workloads := []struct {
		name, unit string
		run        func(p *peer) (int64, error)
	}{
		{"polling", "request", func(p *peer) (int64, error) {
			r := runPolling(p.URL, pl.PollSessions, pl.PollRounds, pl.Payload)
			if r.Errors > 0 {
				return r.Requests, fmt.Errorf("%d polling sessions failed", r.Errors)
			}
			return r.Requests, nil
		}},
		{"websocket", "message", func(p *peer) (int64, error) {
			r, err := runWebSocket(ctx, p, p.URL, pl.WSSessions, pl.WSEmits, pl.Payload)
			return r.Messages, err
		}},
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "socket.io-client")); err == nil {
		// socket.io-client in Node opens a connection per polling request: per-connection costs.
		workloads = append(workloads, struct {
			name, unit string
			run        func(p *peer) (int64, error)
		}{"socket.io-client-polling", "acked emit", func(p *peer) (int64, error) {
			var s nodeLoad
			err := benchclients(ctx, nodeDir, &s, "--url", p.URL, "--mode", "polling", "--n", strconv.Itoa(pl.NodeSessions),
				"--emits", strconv.Itoa(pl.NodeRounds), "--timeout-ms", "90000")
			if err == nil && s.Failed > 0 {
				err = fmt.Errorf("%d socket.io-client sessions failed: %v", s.Failed, s.Errors)
			}
			return int64(s.OK * pl.NodeRounds), err
		}})
	}
	// Syscalls per unit: a fresh instance of each proxy per workload, started under perf trace so
	// that every thread it ever has is counted (attaching to a running Go process misses the threads
	// it starts later), warmed with a few sessions (counted too: a few hundred syscalls).
	starts := map[string]func(dir string) (*peer, error){
		"sioproxy": func(d string) (*peer, error) { return startSioproxy(sioproxyBin, urls, 1, d) },
		"haproxy":  func(d string) (*peer, error) { return startHAProxy(urls[0], d) },
		"nginx":    func(d string) (*peer, error) { return startNginx(urls[0], d) },
	}
	for _, w := range workloads {
		if !havePerf {
			break
		}
		for _, name := range []string{"sioproxy", "haproxy", "nginx"} {
			out := filepath.Join(dir, fmt.Sprintf("syscalls-%s-%s.txt", name, w.name))
			pdir := filepath.Join(dir, "perf-"+name+"-"+w.name)
			if err := os.MkdirAll(pdir, 0o755); err != nil {
				return err
			}
			peerWrap = func(c *exec.Cmd) *exec.Cmd {
				pc := exec.Command("perf", append([]string{"trace", "-s", "-o", out, "--", c.Path}, c.Args[1:]...)...)
				pc.Env, pc.Dir = c.Env, c.Dir
				return pc
			}
			p, err := starts[name](pdir)
			peerWrap = nil
			if err != nil {
				return err
			}
			runPolling(p.URL, 10, 2, pl.Payload)
			n, err := w.run(p)
			stopTraced(p)
			if err != nil {
				return fmt.Errorf("%s %s: %w", name, w.name, err)
			}
			b, rerr := os.ReadFile(out)
			if rerr != nil {
				return rerr
			}
			r := profileRun{Proxy: name, Workload: w.name, Unit: w.unit, Units: n, Syscalls: parsePerfSummary(b)}
			for i := range r.Syscalls {
				r.Syscalls[i].PerUnit = float64(r.Syscalls[i].Calls) / float64(n)
				r.Syscalls[i].ErrPU = float64(r.Syscalls[i].Errors) / float64(n)
			}
			runs = append(runs, r)
			logf("profile %-8s %-9s %d %ss, %d syscall kinds counted", name, w.name, n, w.unit, len(r.Syscalls))
		}
	}
	if !havePerf {
		for _, w := range workloads {
			for _, p := range peers {
				runs = append(runs, profileRun{Proxy: p.Name, Workload: w.name, Unit: w.unit, Units: 1})
			}
		}
	}
	// sioproxy's CPU and allocation profiles and an execution trace, per workload (no perf attached).
	for i, w := range workloads {
		if err := pprofWhile(ctx, admin, dir, w.name, func() error { _, err := w.run(sp); return err }); err != nil {
			return err
		}
		small := func() (int64, error) {
			switch w.name {
			case "polling":
				r := runPolling(sp.URL, 50, 10, pl.Payload)
				return r.Requests, nil
			case "websocket":
				r, err := runWebSocket(ctx, sp, sp.URL, 50, 20, pl.Payload)
				return r.Messages, err
			}
			return 0, nil
		}
		if w.name != "polling" && w.name != "websocket" {
			continue
		}
		parks, units, err := traceParks(ctx, admin, filepath.Join(dir, "trace-"+w.name+".out"), small)
		if err != nil {
			return err
		}
		for j := range runs {
			if runs[j].Proxy == "sioproxy" && runs[j].Workload == workloads[i].name {
				runs[j].Parks, runs[j].ParkUnits = parks, units
			}
		}
	}
	// Memory: the figures from an instance as it runs; the allocation sites from one that records
	// every allocation (which costs memory of its own).
	mem, err := idleMemory(ctx, sioproxyBin, urls, filepath.Join(dir, "idle"), nil)
	if err != nil {
		return err
	}
	exact, err := idleMemory(ctx, sioproxyBin, urls, filepath.Join(dir, "idle-exact"), []string{"GODEBUG=memprofilerate=1"})
	if err != nil {
		return err
	}
	mem.TopInuse = exact.TopInuse
	for _, g := range []string{"GOGC=50", "GOGC=25"} {
		v, err := idleMemory(ctx, sioproxyBin, urls, filepath.Join(dir, "idle-"+strings.ToLower(strings.ReplaceAll(g, "=", ""))), []string{g})
		if err != nil {
			return err
		}
		v.Label = g
		mem.Variants = append(mem.Variants, v)
	}
	return os.WriteFile(filepath.Join(dir, "profile.md"), profileReport(runs, mem), 0o644)
}

// stopTraced stops a proxy started under perf trace: the proxy first (perf then writes its
// summary and exits), then perf.
func stopTraced(p *peer) {
	for _, pid := range p.pids()[1:] {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

var perfLine = regexp.MustCompile(`^\s+([a-z_0-9]+)\s+(\d+)\s+(\d+)\s+([0-9.]+)\s`)

// parsePerfSummary sums the per-thread tables of `perf trace -s` by syscall.
func parsePerfSummary(b []byte) []syscallCount {
	byName := map[string]*syscallCount{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		c := byName[m[1]]
		if c == nil {
			c = &syscallCount{Name: m[1]}
			byName[m[1]] = c
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		e, _ := strconv.ParseInt(m[3], 10, 64)
		t, _ := strconv.ParseFloat(m[4], 64)
		c.Calls += n
		c.Errors += e
		c.TotalMs += t
	}
	var out []syscallCount
	for _, c := range byName {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Calls > out[j].Calls })
	return out
}

// pprofWhile takes a CPU profile and an allocation delta profile of sioproxy while work repeats.
func pprofWhile(ctx context.Context, admin, dir, name string, work func() error) error {
	const seconds = 8
	type res struct {
		err error
	}
	done := make(chan res, 2)
	go func() {
		done <- res{fetch(admin+fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), filepath.Join(dir, "cpu-"+name+".pprof"))}
	}()
	go func() {
		done <- res{fetch(admin+fmt.Sprintf("/debug/pprof/allocs?seconds=%d", seconds), filepath.Join(dir, "allocs-"+name+".pprof"))}
	}()
	deadline := time.Now().Add(seconds*time.Second + 500*time.Millisecond)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err := work(); err != nil {
			return err
		}
	}
	for i := 0; i < 2; i++ {
		if r := <-done; r.err != nil {
			return r.err
		}
	}
	return nil
}

func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// traceParks records an execution trace of sioproxy during one run of work and counts goroutine
// blocks by reason (`go tool trace -d=parsed`).
func traceParks(ctx context.Context, admin, path string, work func() (int64, error)) (map[string]int64, int64, error) {
	const seconds = 4
	errc := make(chan error, 1)
	go func() { errc <- fetch(admin+fmt.Sprintf("/debug/pprof/trace?seconds=%d", seconds), path) }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	units, err := work()
	if err != nil {
		return nil, 0, err
	}
	if time.Since(start) > seconds*time.Second-time.Second {
		return nil, 0, fmt.Errorf("trace: the workload took %v, longer than the trace", time.Since(start))
	}
	if err := <-errc; err != nil {
		return nil, 0, err
	}
	out, err := exec.Command("go", "tool", "trace", "-d=parsed", path).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go tool trace: %w", err)
	}
	return countParks(out), units, nil
}

var parkRe = regexp.MustCompile(`GoID=\d+ (?:Running|Runnable)->Waiting(?: Reason="([^"]*)")?`)

// countParks counts goroutine transitions to Waiting by reason in `go tool trace -d=parsed` output.
func countParks(b []byte) map[string]int64 {
	out := map[string]int64{}
	for _, m := range parkRe.FindAllSubmatch(b, -1) {
		reason := string(m[1])
		if reason == "" {
			reason = "unspecified"
		}
		out[reason]++
	}
	return out
}

// idleMem is the memory of idle parked tunnels in one sioproxy.
type idleMem struct {
	Sessions                         int
	RSSKB, BaseRSSKB                 int64
	Heap, BaseHeap                   map[string]int64 // runtime MemStats fields
	Goroutines, BaseGoroutines       int
	TopInuse                         string // pprof -top of the in-use heap at the step (per object site)
	SockBase, Sock                   sockstat
	SlabBase, Slab                   int64
	EpollItems, FDs, BaseFDs, BaseEp int
	Label                            string     // the environment of a variant
	Variants                         []*idleMem // the same with other GOGC settings
}

// idleMemory holds idle WebSocket sessions through a fresh sioproxy (environment env) and reads its
// memory, the runtime's memory statistics and its heap profile before and after.
func idleMemory(ctx context.Context, sioproxyBin string, urls []string, mdir string, env []string) (*idleMem, error) {
	const n = 4000
	adminPort, err := freePort()
	if err != nil {
		return nil, err
	}
	admin := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, err
	}
	sp, err := startSioproxyArgs(sioproxyBin, urls, 1, mdir, env, "-admin-listen", strings.TrimPrefix(admin, "http://"))
	if err != nil {
		return nil, err
	}
	defer sp.stop()
	d := &dialer{base: sp.URL, sources: loopbackSources(16)}
	warm, _ := d.openMany(ctx, 20, 20)
	closeAll(warm)
	time.Sleep(time.Second)
	m := &idleMem{Sessions: n}
	read := func(tag string) (usage, map[string]int64, int, int, int, error) {
		_, _ = http.Get(admin + "/debug/pprof/heap?gc=1") // a GC first: live memory only
		if err := fetch(admin+"/debug/pprof/heap?debug=1", filepath.Join(mdir, "heap-"+tag+".txt")); err != nil {
			return usage{}, nil, 0, 0, 0, err
		}
		if err := fetch(admin+"/debug/pprof/heap", filepath.Join(mdir, "heap-"+tag+".pprof")); err != nil {
			return usage{}, nil, 0, 0, 0, err
		}
		b, _ := os.ReadFile(filepath.Join(mdir, "heap-"+tag+".txt"))
		g, _ := goroutines(admin)
		u, err := readUsage(sp.pids())
		fds, ep := fdInfo(sp.cmd.Process.Pid)
		return u, memStats(b), g, fds, ep, err
	}
	u0, h0, g0, fd0, ep0, err := read("base")
	if err != nil {
		return nil, err
	}
	if m.SockBase, err = readSockstat(); err != nil {
		return nil, err
	}
	m.SlabBase = readSlab()
	conns, failed := d.openMany(ctx, n, 256)
	defer closeAll(conns)
	if failed > 0 {
		return nil, fmt.Errorf("idle memory: %d of %d sessions failed to open", failed, n)
	}
	time.Sleep(2 * time.Second)
	u1, h1, g1, fd1, ep1, err := read("held")
	if err != nil {
		return nil, err
	}
	if m.Sock, err = readSockstat(); err != nil {
		return nil, err
	}
	m.Slab = readSlab()
	m.Sessions = alive(conns)
	m.RSSKB, m.BaseRSSKB, m.Heap, m.BaseHeap, m.Goroutines, m.BaseGoroutines = u1.RSSKB, u0.RSSKB, h1, h0, g1, g0
	m.FDs, m.BaseFDs, m.EpollItems, m.BaseEp = fd1, fd0, ep1, ep0
	top, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=25", "-ignore=runtime/pprof|compress/flate",
		"-base", filepath.Join(mdir, "heap-base.pprof"), filepath.Join(mdir, "heap-held.pprof")).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	m.TopInuse = string(top)
	return m, nil
}

var memStatRe = regexp.MustCompile(`(?m)^# (\w+) = (\d+)`)

// memStats reads the "# Name = value" lines that /debug/pprof/heap?debug=1 ends with.
func memStats(b []byte) map[string]int64 {
	out := map[string]int64{}
	for _, m := range memStatRe.FindAllSubmatch(b, -1) {
		v, _ := strconv.ParseInt(string(m[2]), 10, 64)
		out[string(m[1])] = v
	}
	return out
}

func goroutines(admin string) (int, error) {
	resp, err := http.Get(admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	// "goroutine profile: total N"
	f := strings.Fields(line)
	return strconv.Atoi(f[len(f)-1])
}

// fdInfo counts the open descriptors of pid and the epoll registrations over all its epoll fds.
func fdInfo(pid int) (fds, epollItems int) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		epollItems += strings.Count(string(b), "tfd:")
	}
	return len(ents), epollItems
}

func profileReport(runs []profileRun, m *idleMem) []byte {
	var w bytes.Buffer
	fmt.Fprintf(&w, "# sioproxy profile (benchrun -profile)\n\nGenerated %s. Load average: %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.TrimSpace(readLoad()))
	fmt.Fprintf(&w, "## Syscalls per unit (perf trace -s, all threads of the proxy processes)\n\n")
	for _, wl := range []string{"polling", "websocket", "socket.io-client-polling"} {
		names := map[string]bool{}
		byProxy := map[string]profileRun{}
		for _, r := range runs {
			if r.Workload != wl {
				continue
			}
			byProxy[r.Proxy] = r
			for _, s := range r.Syscalls {
				if float64(s.Calls)/float64(r.Units) >= 0.01 {
					names[s.Name] = true
				}
			}
		}
		var sorted []string
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		unit := byProxy["sioproxy"].Unit
		if unit == "" {
			continue
		}
		fmt.Fprintf(&w, "### %s (per %s; errors such as EAGAIN in parentheses)\n\n| syscall | sioproxy | haproxy | nginx |\n|---|---|---|---|\n", wl, unit)
		total := map[string]float64{}
		for _, n := range sorted {
			fmt.Fprintf(&w, "| %s |", n)
			for _, p := range []string{"sioproxy", "haproxy", "nginx"} {
				v := "-"
				for _, s := range byProxy[p].Syscalls {
					if s.Name == n {
						v = fmt.Sprintf("%.3f (%.3f)", s.PerUnit, s.ErrPU)
						total[p] += s.PerUnit
					}
				}
				fmt.Fprintf(&w, " %s |", v)
			}
			fmt.Fprintln(&w)
		}
		fmt.Fprintf(&w, "| **total** | %.2f | %.2f | %.2f |\n\n", total["sioproxy"], total["haproxy"], total["nginx"])
		if r := byProxy["sioproxy"]; r.ParkUnits > 0 {
			fmt.Fprintf(&w, "sioproxy goroutine parks per %s (execution trace, %d %ss):", unit, r.ParkUnits, unit)
			var reasons []string
			for k := range r.Parks {
				reasons = append(reasons, k)
			}
			sort.Slice(reasons, func(i, j int) bool { return r.Parks[reasons[i]] > r.Parks[reasons[j]] })
			var all int64
			for _, k := range reasons {
				all += r.Parks[k]
				fmt.Fprintf(&w, " %s %.2f;", k, float64(r.Parks[k])/float64(r.ParkUnits))
			}
			fmt.Fprintf(&w, " total %.2f\n\n", float64(all)/float64(r.ParkUnits))
		}
	}
	if m != nil {
		n := float64(m.Sessions)
		fmt.Fprintf(&w, "## Memory of an idle parked WebSocket session (%d held, GOMAXPROCS=1, after a GC)\n\n", m.Sessions)
		fmt.Fprintf(&w, "| item | total added | per session |\n|---|---|---|\n")
		fmt.Fprintf(&w, "| RSS | %d KB | %.0f B |\n", m.RSSKB-m.BaseRSSKB, float64(m.RSSKB-m.BaseRSSKB)*1024/n)
		objs := m.Heap["HeapObjects"] - m.BaseHeap["HeapObjects"]
		fmt.Fprintf(&w, "| runtime HeapObjects (count) | %d | %.1f |\n", objs, float64(objs)/n)
		for _, k := range []string{"HeapAlloc", "HeapInuse", "HeapIdle", "HeapReleased", "HeapSys", "Stack", "MSpan", "MCache", "BuckHashSys", "GCSys", "OtherSys", "Sys"} {
			d := m.Heap[k] - m.BaseHeap[k]
			fmt.Fprintf(&w, "| runtime %s | %d KB | %.0f B |\n", k, d>>10, float64(d)/n)
		}
		fmt.Fprintf(&w, "| goroutines | %d | %.2f |\n", m.Goroutines-m.BaseGoroutines, float64(m.Goroutines-m.BaseGoroutines)/n)
		fmt.Fprintf(&w, "| descriptors | %d | %.2f |\n", m.FDs-m.BaseFDs, float64(m.FDs-m.BaseFDs)/n)
		fmt.Fprintf(&w, "| epoll registrations (all epoll sets of the process) | %d | %.2f |\n", m.EpollItems-m.BaseEp, float64(m.EpollItems-m.BaseEp)/n)
		fmt.Fprintf(&w, "| kernel TCP buffers (system-wide, 4 sockets per session) | %d pages | %.0f B |\n", m.Sock.MemPages-m.SockBase.MemPages,
			float64(m.Sock.MemPages-m.SockBase.MemPages)*float64(os.Getpagesize())/n)
		fmt.Fprintf(&w, "| kernel slab %v (system-wide, 4 sockets per session and their epoll registrations) | %d KB | %.0f B |\n\n", slabCaches,
			(m.Slab-m.SlabBase)>>10, float64(m.Slab-m.SlabBase)/n)
		if len(m.Variants) > 0 {
			fmt.Fprintf(&w, "GOGC and the resident memory of idle sessions (fresh instance each, same workload):\n\n| setting | RSS per session | HeapInuse per session | heap idle, not released, per session |\n|---|---|---|---|\n")
			for _, v := range append([]*idleMem{m}, m.Variants...) {
				label := v.Label
				if label == "" {
					label = "default (GOGC=100)"
				}
				vn := float64(v.Sessions)
				idle := (v.Heap["HeapIdle"] - v.Heap["HeapReleased"]) - (v.BaseHeap["HeapIdle"] - v.BaseHeap["HeapReleased"])
				fmt.Fprintf(&w, "| %s | %.0f B | %.0f B | %.0f B |\n", label, float64(v.RSSKB-v.BaseRSSKB)*1024/vn,
					float64(v.Heap["HeapInuse"]-v.BaseHeap["HeapInuse"])/vn, float64(idle)/vn)
			}
			fmt.Fprintln(&w)
		}
		fmt.Fprintf(&w, "In-use heap added, by allocation site (a second instance with GODEBUG=memprofilerate=1; `go tool pprof -top -sample_index=inuse_space -base`):\n\n```\n%s```\n", m.TopInuse)
	}
	return w.Bytes()
}

func readLoad() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return string(b)
}
