package health

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"sioproxy/balancer"
)

// startSocketIO runs a real Socket.IO server of the given major version (test/node/backend.js) and
// returns its address and a channel of the events it prints.
func startSocketIO(t *testing.T, version string) (string, <-chan map[string]any) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for this test (Node 20 from the system); then `cd test/node && npm ci`")
	}
	dir, _ := filepath.Abs("../test/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io")); err != nil {
		t.Fatal("test/node/node_modules is missing: run `cd test/node && npm ci` (./test/run.sh does)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(node, "backend.js", "--port", strconv.Itoa(port), "--name", "probe-"+version, "--version", version)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	events := make(chan map[string]any, 100)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			if ev["event"] == "ready" {
				close(ready)
				continue
			}
			events <- ev
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("socket.io backend did not start")
	}
	return "127.0.0.1:" + strconv.Itoa(port), events
}

// The engineio probe understands what real servers answer: socket.io 4 (Engine.IO v4) and socket.io 2
// (Engine.IO v3 framing, "96:0{...}2:40"), and closes the session it opened in both.
func TestEngineIOProbeAgainstRealSocketIO(t *testing.T) {
	for _, version := range []string{"4", "2"} {
		t.Run("socket.io@"+version, func(t *testing.T) {
			addr, events := startSocketIO(t, version)
			p, err := NewProber(ProbeOptions{Kind: ProbeEngineIO, Path: "/socket.io/", Interval: 50 * time.Millisecond,
				Timeout: 2 * time.Second, Rise: 1, Fall: 1}, nopSetter{})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.probe(balancer.Spec{ID: "b", Addr: addr}); err != nil {
				t.Fatalf("probe of a healthy socket.io@%s server failed: %v", version, err)
			}
			deadline := time.After(10 * time.Second)
			for {
				select {
				case ev := <-events:
					if ev["event"] == "disconnect" {
						return // the close packet reached the server: no session left behind
					}
				case <-deadline:
					t.Fatal("the probe's session was not closed at the server")
				}
			}
		})
	}
}
