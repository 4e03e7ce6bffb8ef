// Command sioload is a load generator for Socket.IO servers and the proxies in front of them.
//
// It opens -sessions Socket.IO sessions (Engine.IO 3 or 4; polling, polling upgraded to
// WebSocket, or WebSocket only) at -ramp sessions per second, emits -rate events per second on
// each of them in an open loop, and reports sessions ok and failed, handshakes per second, emits
// per second, ack latency percentiles (p50, p90, p99, p99.9) and errors by kind, as text or
// JSON (-json). On a terminal it shows a live progress line.
//
//	sioload -url http://127.0.0.1:8080 -mode upgrade -sessions 1000 -ramp 200 -rate 2 -duration 30s
//
// Exit status: 0 when at least one session connected, 1 when none did, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stdout))
	stop()
	os.Exit(code)
}

// isTerminal reports whether f is a character device (a terminal), without golang.org/x/term.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, tty bool) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sioload: %v\n", err)
		return 2
	}
	var progress func(Snapshot)
	if tty {
		var prev Snapshot
		progress = func(s Snapshot) {
			fmt.Fprintf(stdout, "\r\x1b[K%s", progressLine(s, prev))
			prev = s
		}
	}
	g := newGenerator(cfg, time.Now)
	if cfg.Hold > 0 {
		fmt.Fprintf(stderr, "sioload: sessions will be held idle for %v after the run\n", cfg.Hold)
	}
	sum := g.Run(ctx, time.Second, progress)
	if tty {
		fmt.Fprint(stdout, "\r\x1b[K")
	}
	if cfg.JSON {
		err = writeJSON(stdout, sum)
	} else {
		err = writeText(stdout, sum)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sioload: %v\n", err)
		return 1
	}
	if sum.Sessions.OK == 0 {
		return 1
	}
	return 0
}
