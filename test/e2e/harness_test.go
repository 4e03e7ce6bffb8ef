package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Paths resolved once by TestMain.
var (
	moduleRoot string // directory of the sioproxy go.mod
	nodeDir    string // test/node
	proxyBin   string // the sioproxy binary under test
	nodeBin    string // node
)

const setupHint = "run the end-to-end setup first: `cd test/node && npm ci` (see README, Testing), then `go test ./test/e2e/`"

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// setup finds the module root, checks node and node_modules, and builds the proxy once.
func setup() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("not inside the sioproxy module")
	}
	moduleRoot = filepath.Dir(gomod)
	nodeDir = filepath.Join(moduleRoot, "test", "node")
	if nodeBin, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("node not found on PATH (install Node.js >= 18); %s", setupHint)
	}
	for _, pkg := range []string{"socket.io", "socket.io-client", "socket.io-v2", "socket.io-client-v2"} {
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", pkg, "package.json")); err != nil {
			return fmt.Errorf("%s/node_modules/%s is missing; %s", nodeDir, pkg, setupHint)
		}
	}
	if bin := os.Getenv("SIOPROXY_BIN"); bin != "" {
		proxyBin = bin
		return nil
	}
	proxyBin = filepath.Join(moduleRoot, "tmp", "sioproxy")
	build := exec.Command("go", "build", "-o", proxyBin, "./cmd/sioproxy")
	build.Dir = moduleRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/sioproxy: %w", err)
	}
	return nil
}

// proc is a child process in its own process group whose output lines are kept for assertions.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is drained

	mu     sync.Mutex
	lines  []string      // stdout lines (stderr too when merged)
	stderr bytes.Buffer  // stderr when not merged
	notify chan struct{} // closed and replaced whenever a line arrives
	err    error         // exit status
}

// startProc starts bin with args in dir. With merge, stderr lines join the stdout lines (proxies log
// to stderr); otherwise stderr is kept apart for diagnostics. The process group is killed at cleanup.
func startProc(t *testing.T, name, dir string, merge bool, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), notify: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	readers := []io.Reader{stdout}
	if merge {
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		readers = append(readers, stderr)
	} else {
		cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.scan(r)
		}()
	}
	go func() {
		wg.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s", p.name, p.tail(30))
			if path, err := p.saveLog(t.Name()); err == nil {
				t.Logf("%s full output: %s", p.name, path)
			}
		}
	})
	return p
}

func (p *proc) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.notify)
		p.notify = make(chan struct{})
		p.mu.Unlock()
	}
}

// kill SIGKILLs the whole process group and waits for the exit.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// signal sends sig to the process itself (not its group).
func (p *proc) signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// snapshot returns the lines so far and a channel closed when the next one arrives.
func (p *proc) snapshot() ([]string, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines, p.notify
}

// waitLine waits until a line satisfies match, the process exits, or timeout passes.
func (p *proc) waitLine(timeout time.Duration, match func(string) bool) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	seen := 0
	for {
		lines, next := p.snapshot()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen], nil
			}
		}
		select {
		case <-next:
		case <-p.done:
			lines, _ := p.snapshot()
			for ; seen < len(lines); seen++ {
				if match(lines[seen]) {
					return lines[seen], nil
				}
			}
			return "", fmt.Errorf("%s exited (%v) before the expected output", p.name, p.exitErr())
		case <-timer.C:
			return "", fmt.Errorf("%s: expected output not seen within %v", p.name, timeout)
		}
	}
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// tail returns the last n output lines plus stderr.
func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, "\n")
	if p.stderr.Len() > 0 {
		errText := p.stderr.String()
		if len(errText) > 4000 {
			errText = errText[len(errText)-4000:]
		}
		s += "\n[stderr]\n" + errText
	}
	return s
}

// saveLog writes the whole output to tmp/e2e-logs/<test>/<name>.log under the module root.
func (p *proc) saveLog(test string) (string, error) {
	dir := filepath.Join(moduleRoot, "tmp", "e2e-logs", strings.ReplaceAll(test, "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p.mu.Lock()
	data := strings.Join(p.lines, "\n") + "\n[stderr]\n" + p.stderr.String()
	p.mu.Unlock()
	path := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_").Replace(p.name)+".log")
	return path, os.WriteFile(path, []byte(data), 0o644)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitTCP waits until addr accepts TCP connections; it gives up early if p exits.
func waitTCP(t *testing.T, p *proc, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not accepting connections within %v: %v", p.name, addr, timeout, err)
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before listening on %s", p.name, p.exitErr(), addr)
		case <-tick.C:
		}
	}
}

// ---- Socket.IO backends ----

// backend is a node backend.js process.
type backend struct {
	*proc
	Name    string
	Version string
	Port    int
}

// URL is the backend's base URL.
func (b *backend) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", b.Port) }

// backendEvent is one JSON line of backend.js.
type backendEvent struct {
	Event     string `json:"event"`
	SID       string `json:"sid"`
	Transport string `json:"transport"`
	Reason    string `json:"reason"`
	Requests  int    `json:"requests"`
	Code      int    `json:"code"`
	Message   string `json:"message"`
	URL       string `json:"url"`
}

// startBackend starts a Socket.IO server of the given major version ("4" or "2") and waits until it listens.
func startBackend(t *testing.T, name, version string) *backend {
	t.Helper()
	port := freePort(t)
	p := startProc(t, "backend "+name, nodeDir, false, nodeBin, "backend.js",
		"--port", strconv.Itoa(port), "--name", name, "--version", version)
	if _, err := p.waitLine(20*time.Second, func(l string) bool { return strings.Contains(l, `"event":"ready"`) }); err != nil {
		t.Fatalf("backend %s: %v\n%s", name, err, p.tail(20))
	}
	return &backend{proc: p, Name: name, Version: version, Port: port}
}

// startBackends starts n backends named prefix1..prefixN.
func startBackends(t *testing.T, n int, prefix, version string) []*backend {
	t.Helper()
	bs := make([]*backend, n)
	for i := range bs {
		bs[i] = startBackend(t, fmt.Sprintf("%s%d", prefix, i+1), version)
	}
	return bs
}

// events returns the backend's parsed JSON lines of the given kind ("" = all).
func (b *backend) events(kind string) []backendEvent {
	lines, _ := b.snapshot()
	var out []backendEvent
	for _, l := range lines {
		var e backendEvent
		if json.Unmarshal([]byte(l), &e) != nil {
			continue
		}
		if kind == "" || e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

// waitDisconnects waits until the backend has logged a disconnect for every sid in want.
func (b *backend) waitDisconnects(want map[string]bool, timeout time.Duration) error {
	missing := func() int {
		n := 0
		got := map[string]bool{}
		for _, e := range b.events("disconnect") {
			got[e.SID] = true
		}
		for sid := range want {
			if !got[sid] {
				n++
			}
		}
		return n
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		_, next := b.snapshot()
		n := missing()
		if n == 0 {
			return nil
		}
		select {
		case <-next:
		case <-b.done:
			return fmt.Errorf("backend %s exited with %d disconnects missing", b.Name, missing())
		case <-timer.C:
			return fmt.Errorf("backend %s: %d of %d sessions not disconnected within %v", b.Name, n, len(want), timeout)
		}
	}
}

func backendURLs(bs []*backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.URL()
	}
	return out
}

func backendNames(bs []*backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return out
}

// assertNoUnknownSID fails when any backend answered "Session ID unknown" for a sid it never issued:
// a request of a session reached a backend that does not own it. A late request for a session that
// the backend itself issued and already closed (a poll racing the client's close) is the client's own
// race, not a routing error, and is only counted.
func assertNoUnknownSID(t *testing.T, bs []*backend) {
	t.Helper()
	late := 0
	for _, b := range bs {
		issued := map[string]bool{}
		for _, e := range b.events("connection") {
			issued[e.SID] = true
		}
		for _, e := range b.events("connection_error") {
			switch {
			case e.Code != 1:
			case issued[e.SID]:
				late++
			default:
				t.Errorf("backend %s got a request for a session it does not own: %s %q (url %s)", b.Name, e.Message, e.SID, e.URL)
			}
		}
	}
	if late > 0 {
		t.Logf("%d requests reached their own backend after their session had closed", late)
	}
}

// ---- sioproxy ----

// proxyProc is a running sioproxy.
type proxyProc struct {
	*proc
	Addr string
}

// URL is the proxy's base URL.
func (p *proxyProc) URL() string { return "http://" + p.Addr }

// startProxy starts sioproxy on addr ("" = a free port) in front of backends and waits until it accepts TCP.
func startProxy(t *testing.T, name, addr string, backends []string, extra ...string) *proxyProc {
	t.Helper()
	p := launchProxy(t, name, addr, backends, extra...)
	waitTCP(t, p.proc, p.Addr, 15*time.Second)
	return p
}

// launchProxy starts sioproxy without waiting for readiness.
func launchProxy(t *testing.T, name, addr string, backends []string, extra ...string) *proxyProc {
	t.Helper()
	if addr == "" {
		addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	// The admin listener is off: its default port is shared by every proxy on the machine.
	args := []string{"-listen", addr, "-log-level", "info", "-admin-listen="}
	for _, b := range backends {
		args = append(args, "-backend", b)
	}
	args = append(args, extra...)
	return &proxyProc{proc: startProc(t, name, moduleRoot, true, proxyBin, args...), Addr: addr}
}

// ---- clients.js ----

// clientOpts are the arguments of clients.js.
type clientOpts struct {
	URL         string
	Mode        string // polling, upgrade, websocket
	Version     string // "4" or "2"
	N           int
	Emits       int
	Concurrency int
	TimeoutMs   int
	HoldMs      int
}

func (o clientOpts) args() []string {
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
	Ms            int            `json:"ms"`
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
	Version   string          `json:"version"`
	Ms        int             `json:"ms"`
	Connected int             `json:"connected"`
	ByBackend map[string]int  `json:"byBackend"`
	Sessions  []clientSession `json:"sessions"`
}

// runClients runs clients.js to completion and returns its summary.
func runClients(t *testing.T, o clientOpts) clientSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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

// waitProgress waits for a progress event ("all_connected", "all_acked") and returns its unix ms.
func (h *holdRun) waitProgress(t *testing.T, event string, timeout time.Duration) int64 {
	t.Helper()
	line, err := h.waitLine(timeout, func(l string) bool { return strings.Contains(l, `"event":"`+event+`"`) })
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

// waitAckedAfter waits until every session of the run has had an ack later than ms (unix ms).
func (h *holdRun) waitAckedAfter(t *testing.T, ms int64, timeout time.Duration) {
	t.Helper()
	_, err := h.waitLine(timeout, func(l string) bool {
		if !strings.Contains(l, `"event":"acks"`) {
			return false
		}
		var ev struct {
			MinLastAckAt int64 `json:"minLastAckAt"`
		}
		return json.Unmarshal([]byte(l), &ev) == nil && ev.MinLastAckAt > ms
	})
	if err != nil {
		t.Errorf("clients %s: not every session was acked after %d: %v", h.opts.Mode, ms, err)
	}
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
