package browser

import (
	"bufio"
	"bytes"
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

// proc is a child process in its own process group whose output lines are kept for assertions.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser // nil unless asked for
	done  chan struct{}  // closed when the process has exited and its output is drained

	mu     sync.Mutex
	lines  []string      // stdout lines (stderr lines too when merged)
	stderr bytes.Buffer  // stderr when not merged
	notify chan struct{} // closed and replaced whenever a line arrives
	err    error         // exit status
}

// procSpec says how to start a process.
type procSpec struct {
	name  string
	dir   string
	env   []string // added to the environment
	merge bool     // stderr lines join the stdout lines (the proxy logs to stderr)
	stdin bool     // keep a pipe to stdin
	bin   string
	args  []string
}

// start runs the process described by s.
func (s procSpec) start() (*proc, error) {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: s.name, cmd: cmd, done: make(chan struct{}), notify: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	readers := []io.Reader{stdout}
	if s.merge {
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return nil, err
		}
		readers = append(readers, stderr)
	} else {
		cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	}
	if s.stdin {
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
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
	return p, nil
}

// startProc starts s for the test t and kills it at the end of t, logging its output if t failed.
func startProc(t *testing.T, s procSpec) *proc {
	t.Helper()
	p, err := s.start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s", p.name, p.tail(30))
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

// kill SIGKILLs the process group and waits for the exit.
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
func (p *proc) snapshot() ([]string, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines, p.notify
}

// waitLine waits for a line at index >= from that satisfies match; it returns the line and its index.
func (p *proc) waitLine(from int, timeout time.Duration, match func(string) bool) (string, int, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for seen := from; ; {
		lines, next := p.snapshot()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen], seen, nil
			}
		}
		select {
		case <-next:
		case <-p.done:
			if lines, _ := p.snapshot(); seen < len(lines) {
				continue
			}
			return "", 0, fmt.Errorf("%s exited (%v) before the expected output", p.name, p.exitErr())
		case <-timer.C:
			return "", 0, fmt.Errorf("%s: expected output not seen within %v", p.name, timeout)
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
			t.Fatalf("%s exited (%v) before listening on %s:\n%s", p.name, p.exitErr(), addr, p.tail(20))
		case <-tick.C:
		}
	}
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
