package consule2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

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

// startProc starts bin with args in dir. With merge, stderr lines join the stdout lines (the proxy
// logs to stderr); otherwise stderr is kept apart for diagnostics. The process group is killed at
// cleanup, and on failure the output is logged and saved under tmp/consule2e-logs.
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
		wg.Go(func() { p.scan(r) })
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

// waitLine waits until a line at index from or later satisfies match, the process exits, or
// timeout passes. It returns the line and its index.
func (p *proc) waitLine(from int, timeout time.Duration, match func(string) bool) (string, int, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	seen := from
	for {
		lines, next := p.snapshot()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen], seen, nil
			}
		}
		select {
		case <-next:
		case <-p.done:
			lines, _ := p.snapshot()
			for ; seen < len(lines); seen++ {
				if match(lines[seen]) {
					return lines[seen], seen, nil
				}
			}
			return "", 0, fmt.Errorf("%s exited (%v) before the expected output", p.name, p.exitErr())
		case <-timer.C:
			return "", 0, fmt.Errorf("%s: expected output not seen within %v", p.name, timeout)
		}
	}
}

// lineCount is the number of output lines so far (a mark for waitLine).
func (p *proc) lineCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
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

// saveLog writes the whole output to tmp/consule2e-logs/<test>/<name>.log under the module root.
func (p *proc) saveLog(test string) (string, error) {
	dir := filepath.Join(moduleRoot, "tmp", "consule2e-logs", strings.ReplaceAll(test, "/", "_"))
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
