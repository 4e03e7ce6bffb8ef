package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"sioproxy/eioclient"
)

// scaleStep is one step of the scaling ladder: a fresh proxy instance holding Sessions idle
// WebSocket sessions (heartbeats flowing), its memory and the CPU it spent over Window.
type scaleStep struct {
	Sessions int
	Failed   int
	RSSKB    int64 // resident memory of the proxy processes
	BaseKB   int64 // before the first session
	Sock     sockstat
	SockBase sockstat
	Slab     int64 // bytes in the kernel's socket and epoll slab caches (slabCaches), system-wide
	SlabBase int64
	CPU      float64 // proxy CPU seconds over Window
	Window   time.Duration
	FDs      int // open descriptors of the proxy processes
}

// PerSessionKB is the resident memory added per session.
func (s scaleStep) PerSessionKB() float64 {
	if s.Sessions == 0 {
		return 0
	}
	return float64(s.RSSKB-s.BaseKB) / float64(s.Sessions)
}

// SockKBPerSession is the kernel's TCP buffer memory added per session (system-wide: the client,
// both proxy sockets and the backend's socket of each session).
func (s scaleStep) SockKBPerSession() float64 {
	if s.Sessions == 0 {
		return 0
	}
	return float64(s.Sock.MemPages-s.SockBase.MemPages) * float64(os.Getpagesize()) / 1024 / float64(s.Sessions)
}

// CPUPerSession is the proxy's CPU per held session, in microseconds per second held.
func (s scaleStep) CPUPerSession() float64 {
	if s.Sessions == 0 || s.Window <= 0 {
		return 0
	}
	return s.CPU * 1e6 / float64(s.Sessions) / s.Window.Seconds()
}

// SlabKBPerSession is the kernel slab memory of sockets and epoll registrations added per session
// (system-wide: the client's, the proxy's two and the backend's socket of each session).
func (s scaleStep) SlabKBPerSession() float64 {
	if s.Sessions == 0 || s.Slab == 0 {
		return math.NaN()
	}
	return float64(s.Slab-s.SlabBase) / 1024 / float64(s.Sessions)
}

// slabCaches are the slab caches a TCP socket and its epoll registrations use; the socket's
// file and dentry (about 400 bytes more) are left out: other processes churn those caches.
var slabCaches = []string{"TCP", "sock_inode_cache", "eventpoll_epi", "eventpoll_pwq"}

// readSlab sums active objects x object size of slabCaches from /proc/slabinfo (0 when unreadable).
func readSlab() int64 {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return 0
	}
	return parseSlab(b)
}

func parseSlab(b []byte) int64 {
	var total int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 4 {
			continue
		}
		for _, c := range slabCaches {
			if string(f[0]) == c {
				active, err1 := strconv.ParseInt(string(f[1]), 10, 64)
				size, err2 := strconv.ParseInt(string(f[3]), 10, 64)
				if err1 == nil && err2 == nil {
					total += active * size
				}
			}
		}
	}
	return total
}

// sockstat is the TCP line of /proc/net/sockstat (system-wide).
type sockstat struct {
	InUse, Alloc, TimeWait int64
	MemPages               int64 // pages of socket buffer memory
}

func readSockstat() (sockstat, error) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return sockstat{}, err
	}
	return parseSockstat(b)
}

// parseSockstat reads "TCP: inuse N orphan N tw N alloc N mem N".
func parseSockstat(b []byte) (sockstat, error) {
	var s sockstat
	for _, line := range bytes.Split(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("TCP:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		found := 0
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseInt(string(f[i+1]), 10, 64)
			if err != nil {
				return s, fmt.Errorf("sockstat: %q: %w", f[i+1], err)
			}
			switch string(f[i]) {
			case "inuse":
				s.InUse = v
			case "alloc":
				s.Alloc = v
			case "tw":
				s.TimeWait = v
			case "mem":
				s.MemPages = v
				found++
			}
		}
		if found == 0 {
			return s, fmt.Errorf("sockstat: no TCP mem field")
		}
		return s, nil
	}
	return s, fmt.Errorf("sockstat: no TCP line")
}

// scaleFresh starts a fresh instance of the named proxy and climbs ladder: at each step it opens
// sessions up to the count, lets them settle, reads memory, then measures CPU over window (the
// backend pings every session once per ping interval). It stops at the first step where opens fail.
func (b *bench) scaleFresh(ctx context.Context, name string, ladder []int, window time.Duration, par int) ([]scaleStep, error) {
	b.freshN++
	dir := filepath.Join(b.work, fmt.Sprintf("fresh-%d", b.freshN))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p, err := b.fresh[name](dir)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	d := &dialer{base: p.URL, sources: loopbackSources(16)}
	warm, _ := d.openMany(ctx, 20, 20)
	closeAll(warm)
	time.Sleep(500 * time.Millisecond)
	base, err := readUsage(p.pids())
	if err != nil {
		return nil, err
	}
	sockBase, err := readSockstat()
	if err != nil {
		return nil, err
	}
	slabBase := readSlab()
	var all []*eioclient.Conn
	defer func() { closeAll(all) }()
	var steps []scaleStep
	for _, target := range ladder {
		conns, failed := d.openMany(ctx, target-len(all), par)
		all = append(all, conns...)
		if ctx.Err() != nil {
			return steps, ctx.Err()
		}
		time.Sleep(time.Second) // handshakes finish on the proxy side, the heap settles
		u0, err := readUsage(p.pids())
		if err != nil {
			return steps, err
		}
		sock, err := readSockstat()
		if err != nil {
			return steps, err
		}
		slab := readSlab()
		select {
		case <-time.After(window):
		case <-ctx.Done():
			return steps, ctx.Err()
		}
		u1, err := readUsage(p.pids())
		if err != nil {
			return steps, err
		}
		st := scaleStep{Sessions: alive(all), Failed: failed, RSSKB: u0.RSSKB, BaseKB: base.RSSKB, Sock: sock,
			SockBase: sockBase, Slab: slab, SlabBase: slabBase, CPU: u1.CPU - u0.CPU, Window: window}
		for _, pid := range p.pids() {
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
				st.FDs += len(fds)
			}
		}
		steps = append(steps, st)
		logf("scale %-8s %5d sessions: %.2f KB/session RSS, kernel %.2f KB/session TCP buffers, %.2f KB/session socket+epoll slab (system-wide), %.2f us CPU/session/s",
			name, st.Sessions, st.PerSessionKB(), st.SockKBPerSession(), st.SlabKBPerSession(), st.CPUPerSession())
		if failed > 0 {
			break
		}
	}
	return steps, nil
}

func alive(conns []*eioclient.Conn) int {
	n := 0
	for _, c := range conns {
		select {
		case <-c.Done():
		default:
			n++
		}
	}
	return n
}
