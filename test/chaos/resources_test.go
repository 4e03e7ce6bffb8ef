package chaos

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// resources are what a replica's /metrics says of its process.
type resources struct {
	goroutines, fds, rss float64
}

func (r resources) String() string {
	return fmt.Sprintf("%.0f goroutines, %.0f fds, %.1f MiB RSS", r.goroutines, r.fds, r.rss/(1<<20))
}

// Leak limits: after the clients have left, a replica's goroutines and descriptors must be back
// within 10% of its baseline, and its RSS within 10% of its baseline or of rssFloor, whichever is
// larger. The floor: an idle replica's RSS is 24 to 37 MiB after the warm-up, and 10% of it is less
// than what the Go runtime keeps for a while after 1,000 sessions' buffers were freed (39 to 50 MiB
// were measured right after a collection, once the clients had left). 48 MiB still catches what a
// leak costs at this scale: 1,000 clients make some 2,500 sessions and 1,500 WebSocket tunnels in a
// 60 s soak, so 16 KiB kept per session or tunnel is 40-60 MiB.
const (
	leakSlack = 0.10
	rssFloor  = 48 << 20
)

// limit is the largest value of r that is "within 10% of the baseline" (whole goroutines and
// descriptors).
func (r resources) limit() resources {
	return resources{
		goroutines: math.Floor(r.goroutines*(1+leakSlack) + 1e-9),
		fds:        math.Floor(r.fds*(1+leakSlack) + 1e-9),
		rss:        max(r.rss, rssFloor) * (1 + leakSlack),
	}
}

func (r resources) within(l resources) bool {
	return r.goroutines <= l.goroutines && r.fds <= l.fds && r.rss <= l.rss
}

// sampleClient reads /metrics on a connection of its own each time, so that the sample counts the
// same one connection (and its goroutine) every time.
var sampleClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// sample reads a replica's process metrics and whether it is idle (no tunnel, no request in flight
// to a backend).
func sample(t *testing.T, px *testkit.Proxy) (resources, bool) {
	t.Helper()
	resp, err := sampleClient.Get(px.AdminURL("/metrics"))
	if err != nil {
		t.Fatalf("%s: GET /metrics: %v", px.Name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET /metrics: %d %v", px.Name, resp.StatusCode, err)
	}
	m, err := testkit.ParseMetrics(string(body))
	if err != nil {
		t.Fatalf("%s: /metrics: %v", px.Name, err)
	}
	var r resources
	r.goroutines, _ = m.Value("go_goroutines")
	r.fds, _ = m.Value("process_open_fds")
	r.rss, _ = m.Value("process_resident_memory_bytes")
	idle := m.Sum("sioproxy_backend_tunnels") == 0 && m.Sum("sioproxy_backend_inflight_requests") == 0
	return r, idle
}

// collectGarbage makes a replica run a garbage collection (the admin API's heap profile with
// gc=1), so that RSS is compared after the heap has shrunk to what is live, not to what a GC that
// has not run yet would free.
func collectGarbage(t *testing.T, px *testkit.Proxy) {
	t.Helper()
	resp, err := sampleClient.Get(px.AdminURL("/debug/pprof/heap?gc=1"))
	if err != nil {
		t.Fatalf("%s: heap profile: %v", px.Name, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// workerExpiry bounds how long a fasthttp server keeps the goroutine of an idle worker: a worker
// idle for 10 s (MaxIdleWorkerDuration's default) is stopped at the pool's next clean-up, which
// runs every 10 s. A replica's goroutine count is its idle floor only that long after its last
// request.
const workerExpiry = 21 * time.Second

// settleBaseline records each slot's baseline: once workerExpiry has passed since the warm-up's
// last request (lastRequest), and the replica is idle, with goroutines and descriptors steady
// (within one of each other over 2 s: the sampling connection itself comes and goes), its
// largest values over those 2 s, and its RSS after a garbage collection.
func settleBaseline(t *testing.T, c *cluster, lastRequest time.Time) time.Duration {
	t.Helper()
	start := time.Now()
	const window = 8 // samples, 250 ms apart
	for _, s := range c.slots {
		var win []resources
		deadline := lastRequest.Add(workerExpiry + 30*time.Second)
		for {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not idle and steady %v after the warm-up (last %v)", s.cur().Name, time.Since(lastRequest), win)
			}
			r, idle := sample(t, s.cur())
			if !idle || time.Since(lastRequest) < workerExpiry {
				win = win[:0]
			} else {
				win = append(win, r)
			}
			if len(win) >= window {
				win = win[len(win)-window:]
				lo, hi := win[0], win[0]
				for _, w := range win {
					lo.goroutines, hi.goroutines = min(lo.goroutines, w.goroutines), max(hi.goroutines, w.goroutines)
					lo.fds, hi.fds = min(lo.fds, w.fds), max(hi.fds, w.fds)
				}
				if hi.goroutines-lo.goroutines <= 1 && hi.fds-lo.fds <= 1 {
					s.baseline = hi
					break
				}
			}
			time.Sleep(250 * time.Millisecond) // the sampling period
		}
		collectGarbage(t, s.cur())
		r, _ := sample(t, s.cur())
		s.baseline.rss = r.rss
		s.baseStacks = goroutines(t, s.cur(), "baseline-"+s.name)
	}
	return time.Since(start)
}

// goroutines saves a replica's goroutine profile (debug=1: stacks grouped, with counts) in the
// test's log directory as goroutines-<name>.txt and returns its groups: count by the first frame
// outside the runtime.
func goroutines(t *testing.T, px *testkit.Proxy, name string) map[string]int {
	t.Helper()
	resp, err := sampleClient.Get(px.AdminURL("/debug/pprof/goroutine?debug=1"))
	if err != nil {
		t.Logf("%s: goroutine profile: %v", px.Name, err)
		return nil
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_ = os.WriteFile(filepath.Join(testkit.LogDir(t), "goroutines-"+name+".txt"), body, 0o644)
	return parseGoroutines(string(body))
}

// parseGoroutines reads a goroutine profile (debug=1): each group's count, by its first frame
// outside the runtime.
func parseGoroutines(profile string) map[string]int {
	out := map[string]int{}
	n := 0
	frame := ""
	flush := func() {
		if n > 0 {
			out[frame] += n
		}
		n, frame = 0, ""
	}
	for _, l := range strings.Split(profile, "\n") {
		switch {
		case strings.Contains(l, " @ 0x"):
			flush()
			n, _ = strconv.Atoi(strings.Fields(l)[0])
		case strings.HasPrefix(l, "#\t") && frame == "":
			if f := strings.Fields(l); len(f) >= 3 && !strings.HasPrefix(f[2], "runtime.") && !strings.HasPrefix(f[2], "internal/") {
				frame = f[2]
			}
		}
	}
	flush()
	return out
}

// stackDiff lists the goroutine groups that grew from base to now.
func stackDiff(base, now map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(now) {
		if d := now[k] - base[k]; d > 0 {
			parts = append(parts, fmt.Sprintf("+%d %s", d, k))
		}
	}
	return orNone(strings.Join(parts, ", "))
}

// settleFinal waits (at most timeout) until each slot's current replica is idle and within the
// leak limits of its slot's baseline, sampling every 250 ms and collecting garbage every 2 s; it
// returns the last sample of each slot and how long it took (-1 for a slot that did not get there).
func settleFinal(t *testing.T, c *cluster, timeout time.Duration) ([]resources, []time.Duration) {
	t.Helper()
	out := make([]resources, len(c.slots))
	took := make([]time.Duration, len(c.slots))
	start := time.Now()
	for i, s := range c.slots {
		px := s.cur()
		lim := s.baseline.limit()
		var lastGC time.Time
		took[i] = -1
		for time.Since(start) < timeout {
			if time.Since(lastGC) > 2*time.Second {
				collectGarbage(t, px)
				lastGC = time.Now()
			}
			r, idle := sample(t, px)
			out[i] = r
			if idle && r.within(lim) {
				took[i] = time.Since(start)
				break
			}
			time.Sleep(250 * time.Millisecond) // the sampling period
		}
	}
	return out, took
}

// cpuTimes reads the machine's busy and total CPU time (jiffies) from /proc/stat: the soak reports
// how busy the machine was, for a run on a shared or loaded machine reads differently.
func cpuTimes() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// machineLoad is how busy the machine was between two cpuTimes readings, in percent of all CPUs.
func machineLoad(b0, t0, b1, t1 uint64) float64 {
	if t1 <= t0 {
		return 0
	}
	return 100 * float64(b1-b0) / float64(t1-t0)
}
