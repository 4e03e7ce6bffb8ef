package testkit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Command says how to start a child process.
type Command struct {
	Name  string   // label in messages; also names the log file
	Dir   string   // working directory
	Bin   string   // executable
	Args  []string // arguments
	Env   []string // added to the environment
	Stdin bool     // keep a pipe to stdin (Proc.Stdin)
}

// Line is one output line of a child process.
type Line struct {
	At     time.Time // when it was read
	Text   string
	Stderr bool // read from stderr, not stdout
}

// Proc is a child process in its own process group. Its stdout and stderr lines are kept in the
// order read, for assertions, and written to its log file as they arrive.
type Proc struct {
	Name  string
	Stdin io.WriteCloser // nil unless Command.Stdin
	Log   string         // path of the log file ("" without Main)

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is drained

	mu     sync.Mutex
	lines  []Line
	log    *os.File
	notify chan struct{} // closed and replaced whenever a line arrives
	err    error         // exit status
}

// Start starts c for the test t: the process group is SIGKILLed when t ends, and when t failed the
// last lines of its output and the path of its log are logged. The log is
// tmp/e2e-logs/<package>/<test>/<name>.log under the module root.
func Start(t testing.TB, c Command) *Proc {
	t.Helper()
	p, err := c.start(filepath.Join(logDir, FileName(t.Name())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s\nfull output: %s", p.Name, p.Tail(30), p.Log)
		}
	})
	return p
}

// LogDir is the log directory of the test t, tmp/e2e-logs/<package>/<test>/ under the module root
// (created): where its processes' logs go, and where it keeps artifacts such as screenshots.
func LogDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(logDir, FileName(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Start starts c outside any test (a process shared by the tests of a binary); the caller kills
// it. Its log is tmp/e2e-logs/<package>/<name>.log.
func (c Command) Start() (*Proc, error) { return c.start(logDir) }

func (c Command) start(dir string) (*Proc, error) {
	cmd := exec.Command(c.Bin, c.Args...)
	cmd.Dir = c.Dir
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Proc{Name: c.Name, cmd: cmd, done: make(chan struct{}), notify: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if c.Stdin {
		if p.Stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
	}
	if logDir != "" {
		if p.log, err = createLog(dir, c.Name); err != nil {
			return nil, err
		}
		p.Log = p.log.Name()
	}
	if err := cmd.Start(); err != nil {
		p.closeLog()
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.scan(stdout, false) })
	wg.Go(func() { p.scan(stderr, true) })
	go func() {
		wg.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		p.closeLog()
		close(p.done)
	}()
	return p, nil
}

// createLog creates dir/<name>.log, or <name>-2.log and so on when the name is taken.
func createLog(dir, name string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := FileName(name)
	for i := 1; ; i++ {
		path := filepath.Join(dir, base+".log")
		if i > 1 {
			path = filepath.Join(dir, fmt.Sprintf("%s-%d.log", base, i))
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !os.IsExist(err) {
			return f, err
		}
	}
}

// FileName turns a test or process name into a file name (spaces and slashes become _).
func FileName(s string) string { return strings.NewReplacer(" ", "_", "/", "_").Replace(s) }

func (p *Proc) scan(r io.Reader, isStderr bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		l := Line{At: time.Now(), Text: sc.Text(), Stderr: isStderr}
		p.mu.Lock()
		p.lines = append(p.lines, l)
		if p.log != nil {
			prefix := ""
			if isStderr {
				prefix = "[stderr] "
			}
			_, _ = fmt.Fprintf(p.log, "%s %s%s\n", l.At.Format("15:04:05.000"), prefix, l.Text)
		}
		close(p.notify)
		p.notify = make(chan struct{})
		p.mu.Unlock()
	}
}

func (p *Proc) closeLog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log != nil {
		_ = p.log.Close()
		p.log = nil
	}
}

// Kill SIGKILLs the whole process group and waits for the exit.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process itself (not its group).
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed once the process has exited and its output is read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the exit status (nil while running or after a clean exit).
func (p *Proc) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Wait waits until the process exits and returns its exit status; after timeout it kills the
// process group and returns an error.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.Err()
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not exit within %v (killed)", p.Name, timeout)
	}
}

// Lines returns the output lines so far.
func (p *Proc) Lines() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lines[:len(p.lines):len(p.lines)]
}

// Texts returns the text of the output lines from index from on.
func (p *Proc) Texts(from int) []string {
	lines := p.Lines()
	out := make([]string, 0, len(lines))
	for _, l := range lines[min(from, len(lines)):] {
		out = append(out, l.Text)
	}
	return out
}

// Stdout returns the stdout lines so far.
func (p *Proc) Stdout() []string {
	var out []string
	for _, l := range p.Lines() {
		if !l.Stderr {
			out = append(out, l.Text)
		}
	}
	return out
}

// Len is the number of output lines so far: a mark for WaitLine.
func (p *Proc) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// WaitLine waits until an output line at index from or later satisfies match and returns it with
// its index; it fails when the process exits first or timeout passes.
func (p *Proc) WaitLine(from int, timeout time.Duration, match func(string) bool) (string, int, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for seen := from; ; {
		p.mu.Lock()
		lines, next := p.lines, p.notify
		p.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if match(lines[seen].Text) {
				return lines[seen].Text, seen, nil
			}
		}
		select {
		case <-next:
		case <-p.done:
			if p.Len() > seen {
				continue
			}
			return "", 0, fmt.Errorf("%s exited (%v) before the expected output", p.Name, p.Err())
		case <-timer.C:
			return "", 0, fmt.Errorf("%s: expected output not seen within %v", p.Name, timeout)
		}
	}
}

// Tail returns the last n output lines, for messages: sids redacted (RedactSIDs), each line cut at
// 1000 bytes.
func (p *Proc) Tail(n int) string {
	lines := p.Lines()
	lines = lines[max(0, len(lines)-n):]
	var b strings.Builder
	for _, l := range lines {
		s := RedactSIDs(l.Text)
		if len(s) > 1000 {
			s = s[:1000] + "…"
		}
		if l.Stderr {
			b.WriteString("[stderr] ")
		}
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}
