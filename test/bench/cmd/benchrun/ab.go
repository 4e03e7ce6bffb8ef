package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The A/B mode (-ab) compares builds or settings of sioproxy with each other, not with the peers:
// every variant runs as its own process in front of the same backends, and the workloads go
// through the variants in turn (the order rotates each repetition), so a busy machine slows all
// variants alike. It reports medians of the proxy CPU per workload and the latency-tail counts.
//
//	-ab 'base=bin/sioproxy;pgo=bin/sioproxy-pgo;gogc50=bin/sioproxy:GOGC=50'

// variant is one sioproxy under comparison: a binary and extra environment variables.
type variant struct {
	Name string
	Bin  string
	Env  []string
}

// parseVariants reads "name=bin[:ENV=V...];..." .
func parseVariants(s string) ([]variant, error) {
	var out []variant
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, rest, ok := strings.Cut(part, "=")
		if !ok || name == "" || rest == "" {
			return nil, fmt.Errorf("-ab: %q is not name=binary[:ENV=value...]", part)
		}
		f := strings.Split(rest, ":")
		v := variant{Name: name, Bin: f[0]}
		for _, e := range f[1:] {
			if !strings.Contains(e, "=") {
				return nil, fmt.Errorf("-ab: %q: %q is not ENV=value", part, e)
			}
			v.Env = append(v.Env, e)
		}
		out = append(out, v)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("-ab: want at least two variants, got %d", len(out))
	}
	return out, nil
}

// abRep is what one repetition measured through one variant.
type abRep struct {
	PollCPU10k, WSCPU10k, NodeCPU float64
	Tail                          tailRun
	MemKB                         float64 // RSS per idle WebSocket session (fresh instance, abMemSessions held)
	Handshakes                    float64 // WebSocket + Socket.IO connects per second
}

// abMemSessions is how many idle sessions the A/B memory step holds.
const abMemSessions = 2000

func runAB(ctx context.Context, vs []variant, backendBin, sioloadBin, nodeDir string, pl plan, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	be, urls, err := startBackend(backendBin, 1, 10*time.Second, dir)
	if err != nil {
		return err
	}
	defer be.stop()
	node, err := startNodeBackend(nodeDir, dir)
	if err != nil {
		return err
	}
	defer node.stop()
	goPeers, nodePeers := map[string]*peer{}, map[string]*peer{}
	for _, v := range vs {
		vdir := filepath.Join(dir, v.Name)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return err
		}
		p, err := startSioproxyArgs(v.Bin, urls, 1, vdir, v.Env)
		if err != nil {
			return fmt.Errorf("%s: %w", v.Name, err)
		}
		defer p.stop()
		goPeers[v.Name] = p
		ndir := filepath.Join(vdir, "node")
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return err
		}
		np, err := startSioproxyArgs(v.Bin, []string{node.URL}, 1, ndir, v.Env)
		if err != nil {
			return fmt.Errorf("%s: %w", v.Name, err)
		}
		defer np.stop()
		nodePeers[v.Name] = np
		runPolling(p.URL, 10, 2, pl.Payload)
		if _, err := runTail(ctx, nodeDir, node, np.URL, 20, pl.TailConc); err != nil {
			return fmt.Errorf("%s warm-up: %w", v.Name, err)
		}
	}
	reps := map[string][]abRep{}
	for rep := 0; rep < pl.Reps; rep++ {
		for i := range vs {
			v := vs[(i+rep)%len(vs)]
			var r abRep
			p := goPeers[v.Name]
			u0, err := readUsage(p.pids())
			if err != nil {
				return err
			}
			pr := runPolling(p.URL, pl.PollSessions, pl.PollRounds, pl.Payload)
			u1, err := readUsage(p.pids())
			if err != nil {
				return err
			}
			if pr.Errors > 0 {
				return fmt.Errorf("%s: %d polling sessions failed", v.Name, pr.Errors)
			}
			r.PollCPU10k = (u1.CPU - u0.CPU) / float64(pr.Requests) * 1e4
			ws, err := runWebSocket(ctx, p, p.URL, pl.WSSessions, pl.WSEmits, pl.Payload)
			if err != nil {
				return fmt.Errorf("%s: %w", v.Name, err)
			}
			r.WSCPU10k = ws.CPU / float64(ws.Messages) * 1e4
			w, err := runNodeWorkload(ctx, nodeDir, nodePeers[v.Name], pl)
			if err != nil {
				return err
			}
			r.NodeCPU = w.PollCPU + w.WSCPU
			if r.Tail, err = runTail(ctx, nodeDir, node, nodePeers[v.Name].URL, pl.TailSessions, pl.TailConc); err != nil {
				return err
			}
			if r.MemKB, err = abMemory(ctx, v, urls, filepath.Join(dir, v.Name, fmt.Sprintf("mem-%d", rep))); err != nil {
				return fmt.Errorf("%s memory: %w", v.Name, err)
			}
			if sioloadBin != "" {
				hs, err := sioload(ctx, sioloadBin, "-url", p.URL, "-mode", "websocket", "-sessions", fmt.Sprint(pl.HSSessions),
					"-ramp", "1000000", "-rate", "0", "-duration", "100ms", "-timeout", "20s")
				if err != nil {
					return fmt.Errorf("%s handshakes: %w", v.Name, err)
				}
				r.Handshakes = hs.HandshakesPerSec
			}
			reps[v.Name] = append(reps[v.Name], r)
			logf("ab rep %d/%d %-10s poll %.3f s/10k, ws %.3f s/10k, socket.io-client %.2f s, tail %d slow (%d raced), %d GET first of %d, mem %.2f KB/session, hs %.0f/s",
				rep+1, pl.Reps, v.Name, r.PollCPU10k, r.WSCPU10k, r.NodeCPU, r.Tail.Slow, r.Tail.SlowRaced, r.Tail.GetFirst, r.Tail.Ordered, r.MemKB, r.Handshakes)
		}
	}
	var w bytes.Buffer
	fmt.Fprintf(&w, "# sioproxy A/B (benchrun -ab)\n\nGenerated %s, %d repetitions, load average %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		pl.Reps, strings.TrimSpace(readLoad()))
	fmt.Fprintf(&w, "| variant | CPU s / 10k polling requests | CPU s / 10k WebSocket messages | socket.io-client workload CPU s | RSS KB per idle session (%d held) | handshakes/s | tail: first ack > 50 ms | of which raced | CONNECT ack before POST ok | first GET before CONNECT POST |\n|---|---|---|---|---|---|---|---|---|---|\n", abMemSessions)
	for _, v := range vs {
		var poll, ws, nc, mem, hs []float64
		var t tailSummary
		for _, r := range reps[v.Name] {
			poll, ws, nc = append(poll, r.PollCPU10k), append(ws, r.WSCPU10k), append(nc, r.NodeCPU)
			mem, hs = append(mem, r.MemKB), append(hs, r.Handshakes)
			t.Sessions += r.Tail.N
			t.Slow += r.Tail.Slow
			t.SlowRaced += r.Tail.SlowRaced
			t.ConnectBeforeDrain += r.Tail.ConnectBeforeDrain
			t.GetFirst += r.Tail.GetFirst
			t.Ordered += r.Tail.Ordered
		}
		fmt.Fprintf(&w, "| %s (%s %s) | %s | %s | %s | %s | %.0f | %d of %d | %d | %d | %d of %d |\n", v.Name, filepath.Base(v.Bin), strings.Join(v.Env, " "),
			f3(median(poll)), f3(median(ws)), f2(median(nc)), f2(median(mem)), median(hs), t.Slow, t.Sessions, t.SlowRaced, t.ConnectBeforeDrain, t.GetFirst, t.Ordered)
	}
	out := filepath.Join(dir, "ab.md")
	if err := os.WriteFile(out, w.Bytes(), 0o644); err != nil {
		return err
	}
	os.Stdout.Write(w.Bytes())
	logf("wrote %s", out)
	return nil
}

// abMemory holds abMemSessions idle WebSocket sessions through a fresh instance of v (warmed with
// 20 sessions) and returns its resident memory added per session.
func abMemory(ctx context.Context, v variant, urls []string, dir string) (float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	p, err := startSioproxyArgs(v.Bin, urls, 1, dir, v.Env)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	d := &dialer{base: p.URL}
	warm, _ := d.openMany(ctx, 20, 20)
	closeAll(warm)
	time.Sleep(500 * time.Millisecond)
	steps, err := runHold(ctx, p, d, []int{abMemSessions}, 2*time.Second, 128)
	if err != nil {
		return 0, err
	}
	if len(steps) == 0 || steps[0].Failed > 0 {
		return 0, fmt.Errorf("sessions failed to open: %+v", steps)
	}
	return steps[0].PerSessionKB(), nil
}
