package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The workloads of this file run the real socket.io-client (test/node/benchclients.js) against a
// real socket.io@4 server (test/node/backend.js), through each proxy and directly.

// nodeBackend is a running test/node/backend.js.
type nodeBackend struct {
	*peer
}

// startNodeBackend runs backend.js on a free port and waits for its ready line.
func startNodeBackend(nodeDir, logDir string) (*nodeBackend, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "backend.js", "--port", strconv.Itoa(port), "--name", "bench", "--version", "4")
	cmd.Dir = nodeDir
	cmd.Stderr = mustCreate(filepath.Join(logDir, "node-backend.log"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("node backend: %w", err)
	}
	p := &peer{Name: "node-backend", URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"event":"ready"`) {
				ready <- nil
				// Drain the event lines so the backend never blocks on a full pipe.
				for sc.Scan() {
				}
				return
			}
		}
		ready <- errors.New("node backend exited before its ready line")
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.stop()
			return nil, err
		}
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, errors.New("node backend: no ready line within 30s")
	}
	return &nodeBackend{p}, nil
}

// order is backend.js's count of sessions by their first polling request after the handshake.
type order struct {
	GetFirst  int `json:"getFirst"`
	PostFirst int `json:"postFirst"`
}

// order reads the backend's counters.
func (b *nodeBackend) order() (order, error) {
	var s struct {
		Order order `json:"order"`
	}
	resp, err := http.Get(b.URL + "/__stats")
	if err != nil {
		return s.Order, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s.Order, err
}

// nodeLoad is the summary of benchclients.js in polling or websocket mode.
type nodeLoad struct {
	OK     int      `json:"ok"`
	Failed int      `json:"failed"`
	Errors []string `json:"errors"`
	Fatal  string   `json:"fatal"`
	Ms     float64  `json:"ms"`
}

// tailRun is the summary of benchclients.js in tail mode, plus the backend's order counters.
type tailRun struct {
	N                  int       `json:"n"`
	OK                 int       `json:"ok"`
	Failed             int       `json:"failed"`
	Slow               int       `json:"slow"`
	SlowRaced          int       `json:"slowRaced"` // slow, and the CONNECT ack came before the POST's ok
	SlowAckMs          []float64 `json:"slowAckMs"`
	ConnectBeforeDrain int       `json:"connectBeforeDrain"`
	Ack                struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"ackMs"`
	Errors   []string `json:"errors"`
	Fatal    string   `json:"fatal"`
	GetFirst int      // sessions whose first polling GET reached the backend before their CONNECT POST
	Ordered  int      // sessions the backend saw both requests of
}

// benchclients runs test/node/benchclients.js and decodes its JSON summary into v.
func benchclients(ctx context.Context, nodeDir string, v any, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"benchclients.js"}, args...)...)
	cmd.Dir = nodeDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if jerr := json.Unmarshal(out, v); jerr != nil {
		return errors.Join(err, jerr, errors.New(strings.TrimSpace(stderr.String())))
	}
	return nil
}

// nodeWorkload is the socket.io-client workload through one path: PollSessions polling-only
// sessions x PollRounds acked emits, then WSSessions WebSocket-only sessions x WSEmits acked emits
// (each phase: all sessions at once, connects and closes included). CPU is the proxy's per phase.
type nodeWorkload struct {
	PollCPU, WSCPU float64
	Errors         int
}

func runNodeWorkload(ctx context.Context, nodeDir string, p *peer, pl plan) (nodeWorkload, error) {
	var w nodeWorkload
	phase := func(mode string, n, emits int) (float64, error) {
		before, err := readUsage(p.pids())
		if err != nil {
			return 0, err
		}
		var s nodeLoad
		// A session's deadline covers all its emits: generous, so that a slow machine is slow, not failed.
		if err := benchclients(ctx, nodeDir, &s, "--url", p.URL, "--mode", mode, "--n", strconv.Itoa(n),
			"--emits", strconv.Itoa(emits), "--timeout-ms", "90000"); err != nil {
			return 0, fmt.Errorf("%s node %s: %w", p.Name, mode, err)
		}
		if s.Fatal != "" {
			return 0, fmt.Errorf("%s node %s: %s", p.Name, mode, s.Fatal)
		}
		after, err := readUsage(p.pids())
		if err != nil {
			return 0, err
		}
		w.Errors += s.Failed
		if s.Failed > 0 {
			logf("%s node %s: %d of %d sessions failed: %v", p.Name, mode, s.Failed, n, s.Errors)
		}
		return after.CPU - before.CPU, nil
	}
	var err error
	if w.PollCPU, err = phase("polling", pl.NodeSessions, pl.NodeRounds); err != nil {
		return w, err
	}
	if w.WSCPU, err = phase("websocket", pl.NodeSessions, pl.NodeRounds); err != nil {
		return w, err
	}
	return w, nil
}

// runTail runs n tail sessions through url and reads the backend's order counters around them.
func runTail(ctx context.Context, nodeDir string, be *nodeBackend, url string, n, conc int) (tailRun, error) {
	var r tailRun
	before, err := be.order()
	if err != nil {
		return r, err
	}
	if err := benchclients(ctx, nodeDir, &r, "--url", url, "--mode", "tail", "--n", strconv.Itoa(n),
		"--concurrency", strconv.Itoa(conc), "--threshold-ms", "50"); err != nil {
		return r, err
	}
	if r.Fatal != "" {
		return r, errors.New(r.Fatal)
	}
	after, err := be.order()
	if err != nil {
		return r, err
	}
	r.GetFirst = after.GetFirst - before.GetFirst
	r.Ordered = r.GetFirst + after.PostFirst - before.PostFirst
	return r, nil
}
