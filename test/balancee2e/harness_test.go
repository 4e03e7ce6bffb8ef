package balancee2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	nodeDir    string // test/node (backend.js and node_modules)
	testDir    string // this package's directory (sessions.js)
	proxyBin   string // the sioproxy binary under test
	nodeBin    string // node
)

func TestMain(m *testing.M) {
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "balancee2e: %v\n", err)
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
	testDir = filepath.Join(moduleRoot, "test", "balancee2e")
	if nodeBin, err = exec.LookPath("node"); err != nil {
		return errors.New("node not found on PATH (install Node.js >= 18, then `cd test/node && npm ci`)")
	}
	for _, pkg := range []string{"socket.io", "socket.io-client"} {
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", pkg, "package.json")); err != nil {
			return fmt.Errorf("%s/node_modules/%s is missing: run `cd test/node && npm ci` first", nodeDir, pkg)
		}
	}
	if bin := os.Getenv("SIOPROXY_BIN"); bin != "" {
		proxyBin = bin
		return nil
	}
	// A binary of our own: test/e2e builds tmp/sioproxy and may run at the same time.
	proxyBin = filepath.Join(moduleRoot, "tmp", "sioproxy-balancee2e")
	build := exec.Command("go", "build", "-o", proxyBin, "./cmd/sioproxy")
	build.Dir = moduleRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/sioproxy: %w", err)
	}
	return nil
}

// line is one output line of a child process and the time it was read.
type line struct {
	At   time.Time
	Text string
}

// proc is a child process in its own process group whose output lines are kept, timestamped.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is drained

	mu     sync.Mutex
	lines  []line        // stdout lines, then stderr lines as they come
	stdout []string      // stdout lines alone
	notify chan struct{} // closed and replaced whenever a line arrives
	err    error
}

// startProc starts bin with args in dir; stdout and stderr lines are both kept. The process group
// is SIGKILLed at cleanup, and its output logged when the test failed.
func startProc(t *testing.T, name, dir, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), notify: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.scan(stdout, true) }()
	go func() { defer wg.Done(); p.scan(stderr, false) }()
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
			t.Logf("%s output (last lines):\n%s", p.name, p.tail(25))
		}
	})
	return p
}

func (p *proc) scan(r io.Reader, isStdout bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		now := time.Now()
		p.mu.Lock()
		p.lines = append(p.lines, line{At: now, Text: sc.Text()})
		if isStdout {
			p.stdout = append(p.stdout, sc.Text())
		}
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

// snapshot returns the lines so far and a channel closed when the next one arrives.
func (p *proc) snapshot() ([]line, chan struct{}) {
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
			if match(lines[seen].Text) {
				return lines[seen].Text, nil
			}
		}
		select {
		case <-next:
		case <-p.done:
			lines, _ := p.snapshot()
			for ; seen < len(lines); seen++ {
				if match(lines[seen].Text) {
					return lines[seen].Text, nil
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

// tail returns the last n output lines.
func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	for _, l := range lines {
		s := l.Text
		if len(s) > 600 {
			s = s[:600] + "…"
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
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
			t.Fatalf("%s exited (%v) before listening on %s\n%s", p.name, p.exitErr(), addr, p.tail(20))
		case <-tick.C:
		}
	}
}

// ---- Socket.IO backends ----

// backend is a node backend.js (socket.io v4) process named b1, b2, ...
type backend struct {
	*proc
	Name string
	Port int
}

// URL is the backend's base URL.
func (b *backend) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", b.Port) }

// startBackends starts n Socket.IO v4 backends named b1..bn and waits until they listen.
func startBackends(t *testing.T, n int) []*backend {
	t.Helper()
	bs := make([]*backend, n)
	for i := range bs {
		name := fmt.Sprintf("b%d", i+1)
		port := freePort(t)
		p := startProc(t, "backend "+name, nodeDir, nodeBin, "backend.js", "--port", strconv.Itoa(port), "--name", name, "--version", "4")
		if _, err := p.waitLine(20*time.Second, func(l string) bool { return strings.Contains(l, `"event":"ready"`) }); err != nil {
			t.Fatalf("backend %s: %v\n%s", name, err, p.tail(20))
		}
		bs[i] = &backend{proc: p, Name: name, Port: port}
	}
	return bs
}

// connectionTimes returns when each "connection" (a new Engine.IO session) of the backend was read.
func (b *backend) connectionTimes() []time.Time {
	lines, _ := b.snapshot()
	var out []time.Time
	for _, l := range lines {
		if strings.Contains(l.Text, `"event":"connection"`) {
			out = append(out, l.At)
		}
	}
	return out
}

// ---- sioproxy ----

// proxyProc is a running sioproxy with its admin listener.
type proxyProc struct {
	*proc
	Addr  string
	Admin string
}

// URL is the proxy's base URL.
func (p *proxyProc) URL() string { return "http://" + p.Addr }

// startProxy writes a config with backends b1..bn (weights[i], default 1) and the YAML of the
// balancer section (indented under "balancer:") and extra top-level YAML, starts sioproxy with it
// and waits until both listeners accept connections.
func startProxy(t *testing.T, bs []*backend, weights []int, balancerYAML, extraYAML string) *proxyProc {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var y strings.Builder
	fmt.Fprintf(&y, "listen: %q\nadmin:\n  listen: %q\nlog:\n  level: warn\nbackends:\n", addr, adminAddr)
	for i, b := range bs {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		fmt.Fprintf(&y, "  - id: %s\n    url: %s\n    weight: %d\n", b.Name, b.URL(), w)
	}
	y.WriteString("balancer:\n")
	for _, l := range strings.Split(strings.TrimSpace(balancerYAML), "\n") {
		y.WriteString("  " + l + "\n")
	}
	y.WriteString(extraYAML)
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "sioproxy", moduleRoot, proxyBin, "-config", cfg)
	waitTCP(t, p, addr, 15*time.Second)
	waitTCP(t, p, adminAddr, 5*time.Second)
	return &proxyProc{proc: p, Addr: addr, Admin: adminAddr}
}

// backendView is one entry of the admin API's GET /backends.
type backendView struct {
	ID       string `json:"id"`
	Sessions int64  `json:"sessions"`
	Tunnels  int64  `json:"tunnels"`
	Ejected  bool   `json:"ejected"`
	Failures uint64 `json:"failures"`
}

// backends returns GET /backends of the admin API by backend id.
func (p *proxyProc) backends(t *testing.T) map[string]backendView {
	t.Helper()
	resp, err := http.Get("http://" + p.Admin + "/backends")
	if err != nil {
		t.Fatalf("GET /backends: %v", err)
	}
	defer resp.Body.Close()
	var vs []backendView
	if err := json.NewDecoder(resp.Body).Decode(&vs); err != nil {
		t.Fatalf("GET /backends: %v", err)
	}
	out := make(map[string]backendView, len(vs))
	for _, v := range vs {
		out[v.ID] = v
	}
	return out
}

// metric returns the sum of the samples of a metric whose label set contains every one of labels
// (e.g. `kind="handshake"`), from GET /metrics of the admin API.
func (p *proxyProc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.Admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		match := true
		for _, want := range labels {
			match = match && strings.Contains(l, want)
		}
		if !match {
			continue
		}
		if v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}
