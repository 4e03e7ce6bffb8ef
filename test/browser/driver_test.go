package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// driver is the run.js process: one Chromium shared by all tests of the binary (a launch costs
// seconds), fed one JSON job per line.
type driver struct {
	p       *testkit.Proc
	tmp     string // TMPDIR of node, hence of the browser profile
	browser string // Chromium version
	mu      sync.Mutex
	nextID  int
}

var (
	driverMu  sync.Mutex
	sharedDrv *driver
	driverErr error
)

// browserDriver returns the shared driver, starting it on first use.
func browserDriver(t *testing.T) *driver {
	t.Helper()
	driverMu.Lock()
	defer driverMu.Unlock()
	if sharedDrv == nil && driverErr == nil {
		sharedDrv, driverErr = startDriver()
	}
	if driverErr != nil {
		t.Fatalf("browser: %v", driverErr)
	}
	return sharedDrv
}

func startDriver() (*driver, error) { return startDriverEnv("browser-tmp") }

// startDriverEnv starts a run.js with its own TMPDIR (named name under the scratch directory) and
// the extra environment env (HOME=DIR gives Chromium DIR/.pki/nssdb as its certificate database).
func startDriverEnv(name string, env ...string) (*driver, error) {
	tmp := filepath.Join(testkit.Scratch(), name)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	p, err := testkit.Command{
		Name:  "run.js " + name,
		Dir:   ".",
		Env:   append([]string{"TMPDIR=" + tmp}, env...),
		Stdin: true,
		Bin:   testkit.Node(),
		Args:  []string{"run.js", "--chromium", testkit.Chromium()},
	}.Start()
	if err != nil {
		return nil, err
	}
	d := &driver{p: p, tmp: tmp}
	_, _, err = p.WaitLine(0, 90*time.Second, func(l string) bool {
		var ev struct{ Event, Browser string }
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Event == "ready" {
			d.browser = ev.Browser
			return true
		}
		return false
	})
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("chromium did not start: %v\n%s", err, p.Tail(30))
	}
	return d, nil
}

// stopDriver closes the shared browser, if any.
func stopDriver() {
	driverMu.Lock()
	defer driverMu.Unlock()
	if sharedDrv != nil {
		sharedDrv.stop()
		sharedDrv = nil
	}
}

// stop closes stdin (run.js then closes the browser and exits), kills what is left after a grace
// period, and any browser process that outlived it.
func (d *driver) stop() {
	_ = d.p.Stdin.Close()
	select {
	case <-d.p.Done():
	case <-time.After(20 * time.Second):
		d.p.Kill()
	}
	if n := killUnder(d.tmp); n > 0 {
		fmt.Fprintf(os.Stderr, "browser tests: killed %d leftover browser processes\n", n)
	}
}

// answer is one reply line of run.js.
type answer struct {
	ID     int             `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// do sends job (its "id" is set here), waits for the answer and decodes its result into out.
func (d *driver) do(t *testing.T, job map[string]any, timeout time.Duration, out any) {
	t.Helper()
	if ok, errText := d.tryDo(t, job, timeout, out); !ok {
		t.Fatalf("run.js job %v failed: %s", job["kind"], testkit.RedactSIDs(errText))
	}
}

// tryDo is do that returns false and run.js's error when the job failed.
func (d *driver) tryDo(t *testing.T, job map[string]any, timeout time.Duration, out any) (bool, string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextID++
	id := d.nextID
	job["id"] = id
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	from := d.p.Len()
	if _, err := d.p.Stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("run.js: write job: %v\n%s", err, d.p.Tail(30))
	}
	var a answer
	_, _, err = d.p.WaitLine(from, timeout, func(l string) bool {
		var got answer
		if json.Unmarshal([]byte(l), &got) != nil || got.ID != id {
			return false
		}
		a = got
		return true
	})
	if err != nil {
		t.Fatalf("run.js job %v: %v\n%s", job["kind"], err, d.p.Tail(30))
	}
	if !a.OK {
		return false, a.Error
	}
	if err := json.Unmarshal(a.Result, out); err != nil {
		t.Fatalf("run.js job %v: decode %s: %v", job["kind"], testkit.RedactSIDs(string(a.Result)), err)
	}
	return true, ""
}

// killUnder SIGKILLs every process whose command line mentions dir (the browser's profile lives
// there), in case one outlived its parent. It returns how many it found.
func killUnder(dir string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}
