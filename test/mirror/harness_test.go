package mirrore2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/proxy"
	"sioproxy/proxy/mirror"
	"sioproxy/sticky"
)

var (
	dir     string // test/mirror
	nodeBin string
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err == nil {
		dir = wd
		nodeBin, err = exec.LookPath("node")
	}
	if err == nil {
		for _, pkg := range []string{"socket.io", "socket.io-client", "socket.io-v2", "socket.io-client-v2"} {
			if _, serr := os.Stat(filepath.Join(dir, "..", "node", "node_modules", pkg, "package.json")); serr != nil {
				err = fmt.Errorf("test/node/node_modules/%s is missing: run `cd test/node && npm ci`", pkg)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mirror e2e: %v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// server is one node server.js process.
type server struct {
	name string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	out  *bytes.Buffer
	mu   *sync.Mutex
}

func (s *server) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// kill SIGKILLs the server and waits for it.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// startServer starts server.js in a role (primary or shadow) and Socket.IO version (4 or 2).
func startServer(t *testing.T, name, role, version string) *server {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(nodeBin, "server.js", "--port", fmt.Sprint(port), "--name", name, "--role", role, "--version", version)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{name: name, port: port, cmd: cmd, done: make(chan struct{}), out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stderr = &lockedWriter{s.mu, s.out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"ready"`) {
				once.Do(func() { close(ready) })
			}
		}
		cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("%s stderr: %s", name, s.out.String())
			s.mu.Unlock()
		}
	})
	select {
	case <-ready:
	case <-s.done:
		t.Fatalf("%s exited before ready: %s", name, s.out.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("%s not ready within 15 s", name)
	}
	return s
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// getJSON GETs a URL into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// events merges the per-client event lists recorded by servers.
func events(t *testing.T, servers ...*server) map[string][]string {
	t.Helper()
	all := map[string][]string{}
	for _, s := range servers {
		var m map[string][]string
		getJSON(t, "http://"+s.addr()+"/__events", &m)
		for c, evs := range m {
			all[c] = append(all[c], evs...)
		}
	}
	return all
}

// specs turns servers into balancer specs.
func specs(servers ...*server) []balancer.Spec {
	out := make([]balancer.Spec, len(servers))
	for i, s := range servers {
		out[i] = balancer.Spec{ID: s.name, Addr: s.addr(), Weight: 1, State: balancer.Active, Source: "test"}
	}
	return out
}

// newMirror builds an enabled mirror over shadow servers.
func newMirror(shadows []*server, opts ...mirror.Option) *mirror.Mirror {
	bal := balancer.New(balancer.NewLeastSessions())
	bal.Update(specs(shadows...))
	m := mirror.New(testLogger(), bal, append([]mirror.Option{mirror.WithCloseGrace(5 * time.Second)}, opts...)...)
	m.Enable(true)
	return m
}

// startProxy runs a proxy in process over the primaries, mirroring through pm (nil: none). It
// returns the client URL.
func startProxy(t *testing.T, primaries []*server, pm proxy.Mirror) string {
	t.Helper()
	bal := balancer.New(balancer.NewRoundRobin(), balancer.WithTagger(sticky.TagFor))
	bal.Update(specs(primaries...))
	var opts []proxy.Option
	if pm != nil {
		opts = append(opts, proxy.WithMirror(pm))
	}
	p := proxy.New(zap.NewNop(), bal, proxy.DefaultSettings(), opts...)
	ln, err := proxy.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		<-served
	})
	return "http://" + ln.Addr().String()
}

// summary is the output of clients.js.
type summary struct {
	OK            int       `json:"ok"`
	Failed        int       `json:"failed"`
	Errors        []string  `json:"errors"`
	Latencies     []float64 `json:"latencies"`
	ShadowAnswers int       `json:"shadowAnswers"`
	Welcome       int       `json:"welcome"`
}

func (s summary) p99() float64 {
	v := append([]float64(nil), s.Latencies...)
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	return v[min(len(v)-1, int(0.99*float64(len(v))))]
}

// clientsCmd starts clients.js; wait with (*clientRun).wait.
type clientRun struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func startClients(t *testing.T, url, mode, version, tag string, n, emits int) *clientRun {
	t.Helper()
	return startClientsC(t, url, mode, version, tag, n, emits, 50)
}

// startClientsC is startClients with a concurrency.
func startClientsC(t *testing.T, url, mode, version, tag string, n, emits, concurrency int) *clientRun {
	t.Helper()
	r := &clientRun{}
	r.cmd = exec.Command(nodeBin, "clients.js", "--url", url, "--mode", mode, "--n", fmt.Sprint(n),
		"--emits", fmt.Sprint(emits), "--version", version, "--tag", tag, "--concurrency", fmt.Sprint(concurrency))
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *clientRun) wait(t *testing.T) summary {
	t.Helper()
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("clients.js: %v: %s", err, r.stderr.String())
	}
	var s summary
	if err := json.Unmarshal(r.stdout.Bytes(), &s); err != nil {
		t.Fatalf("clients.js output %q: %v (stderr %s)", r.stdout.String(), err, r.stderr.String())
	}
	return s
}

// waitIdle waits until every mirrored session has ended.
func waitIdle(t *testing.T, m *mirror.Mirror) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := m.WaitIdle(ctx); err != nil {
		t.Fatalf("mirrored sessions still active: %d (%v)", m.Active(), err)
	}
}

// wantSequence is the event list clients.js produces for one client.
func wantSequence(emits int) []string {
	out := make([]string, emits)
	for i := range out {
		switch i {
		case 7:
			out[i] = fmt.Sprintf("bin:%d", i)
		case 13:
			out[i] = fmt.Sprintf("diff:%d", i)
		default:
			out[i] = fmt.Sprintf("echo:%d", i)
		}
	}
	return out
}

// testLogger logs at debug level when MIRROR_E2E_LOG is set.
func testLogger() *zap.Logger {
	if os.Getenv("MIRROR_E2E_LOG") == "" {
		return zap.NewNop()
	}
	l, _ := zap.NewDevelopment()
	return l
}
