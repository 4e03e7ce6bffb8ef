// Command tlsbench measures TLS termination: full handshakes per second and server CPU time per
// handshake of sioproxy, HAProxy and nginx, with the same certificates (ECDSA P-256 and RSA 2048),
// the same key exchange (X25519) and TLS 1.3 and 1.2. Each server runs on one core (GOMAXPROCS=1,
// nbthread 1, worker_processes 1), pinned with taskset when there are two cores or more; the load
// generator runs in this process on another core. Every handshake is a full one (no session
// resumption), and the connection is closed right after it.
//
//	tlsbench -sioproxy BIN [-duration 10s] [-reps 3] [-conc 32] [-out FILE]
//
// It prints a Markdown table (and writes it to -out) with the median of the repetitions, the
// machine's load average before the run, and how busy each server's core was: below ~90% the
// load generator, not the server, was the limit.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"sioproxy/internal/testpki"
)

func main() {
	bin := flag.String("sioproxy", "", "sioproxy binary (required)")
	duration := flag.Duration("duration", 10*time.Second, "measured time per run")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time before each run")
	reps := flag.Int("reps", 3, "repetitions per (server, key, version); the median is reported")
	conc := flag.Int("conc", 32, "concurrent handshaking connections")
	out := flag.String("out", "", "also write the table to this file")
	servers := flag.String("servers", "sioproxy,haproxy,nginx", "servers to measure")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "tlsbench: -sioproxy BIN is required")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "sioproxy-tlsbench-")
	check(err)
	defer os.RemoveAll(dir)
	ca, err := testpki.NewCA(dir, "bench")
	check(err)
	keys := []struct {
		name string
		kt   testpki.KeyType
	}{{"ECDSA P-256", testpki.ECDSAP256}, {"RSA 2048", testpki.RSA2048}}
	pairs := map[string]testpki.Pair{}
	for _, k := range keys {
		p, err := ca.Server(strings.ReplaceAll(strings.ToLower(k.name), " ", "-"), k.kt, "bench.test", "127.0.0.1")
		check(err)
		pairs[k.name] = p
	}
	serverCPU, clientCPU := pinPlan()
	if clientCPU >= 0 {
		check(unix.SchedSetaffinity(0, cpuSet(clientCPU)))
	}
	runtime.GOMAXPROCS(1)
	load := loadavg()

	var rows []row
	for _, srv := range strings.Split(*servers, ",") {
		for _, k := range keys {
			p, err := start(srv, *bin, pairs[k.name], dir, serverCPU)
			check(err)
			for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
				var runs []result
				for i := 0; i < *reps; i++ {
					r, err := measure(p, v, *conc, *warmup, *duration, ca)
					check(err)
					runs = append(runs, r)
					fmt.Fprintf(os.Stderr, "%s %s %s run %d: %.0f handshakes/s, %.0f µs CPU each, core %.0f%% busy, %d errors\n",
						srv, k.name, versionName(v), i+1, r.rate, r.cpuPer.Seconds()*1e6, 100*r.busy, r.errors)
				}
				rows = append(rows, row{srv, k.name, versionName(v), median(runs)})
			}
			p.stop()
		}
	}
	table := render(rows, load, serverCPU, clientCPU, *duration, *reps, *conc)
	fmt.Print(table)
	if *out != "" {
		check(os.WriteFile(*out, []byte(table), 0o644))
	}
}

type result struct {
	rate   float64       // handshakes per second
	cpuPer time.Duration // server CPU time per handshake
	busy   float64       // server CPU seconds per wall second
	errors int
}

type row struct {
	server, key, version string
	r                    result
}

func median(rs []result) result {
	slices.SortFunc(rs, func(a, b result) int {
		switch {
		case a.rate < b.rate:
			return -1
		case a.rate > b.rate:
			return 1
		}
		return 0
	})
	m := rs[len(rs)/2]
	cpu := make([]time.Duration, len(rs))
	for i, r := range rs {
		cpu[i] = r.cpuPer
	}
	slices.Sort(cpu)
	m.cpuPer = cpu[len(cpu)/2]
	return m
}

// measure runs conc handshaking loops against p for warmup, then counts handshakes and the
// server's CPU time for d.
func measure(p *server, version uint16, conc int, warmup, d time.Duration, ca *testpki.CA) (result, error) {
	cfg := &tls.Config{
		ServerName: "bench.test",
		RootCAs:    ca.Pool(),
		MinVersion: version,
		MaxVersion: version,
		// X25519 for the key exchange on every server; P-256 listed too, since TLS 1.2 offers an ECDSA
		// P-256 certificate only to a client that lists that curve.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		NextProtos:       []string{"http/1.1"},
	}
	// The client verifies nothing it does not have to: the server's cost is what is measured.
	cfg.InsecureSkipVerify = true
	var counting atomic.Bool
	var n, errs atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Go(func() {
			d := net.Dialer{Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", p.addr)
				if err != nil {
					if ctx.Err() == nil && counting.Load() {
						errs.Add(1)
					}
					continue
				}
				tc := tls.Client(c, cfg)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				err = tc.HandshakeContext(ctx)
				c.(*net.TCPConn).SetLinger(0) // no TIME_WAIT pile-up on the client side
				c.Close()
				if !counting.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				n.Add(1)
			}
		})
	}
	time.Sleep(warmup)
	cpu0, err := p.cpu()
	if err != nil {
		cancel()
		wg.Wait()
		return result{}, err
	}
	t0 := time.Now()
	counting.Store(true)
	time.Sleep(d)
	counting.Store(false)
	elapsed := time.Since(t0)
	cpu1, err := p.cpu()
	cancel()
	wg.Wait()
	if err != nil {
		return result{}, err
	}
	count := n.Load()
	if count == 0 {
		return result{}, fmt.Errorf("%s: no handshake succeeded (%d errors)", p.name, errs.Load())
	}
	used := cpu1 - cpu0
	return result{
		rate:   float64(count) / elapsed.Seconds(),
		cpuPer: used / time.Duration(count),
		busy:   used.Seconds() / elapsed.Seconds(),
		errors: int(errs.Load()),
	}, nil
}

// server is a TLS-terminating process under test.
type server struct {
	name string
	addr string
	cmd  *exec.Cmd
}

func start(name, bin string, pair testpki.Pair, dir string, cpu int) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var argv []string
	env := os.Environ()
	switch name {
	case "sioproxy":
		// The backend is never reached: handshakes only.
		argv = []string{bin, "-listen", addr, "-admin-listen", "", "-log-level", "error",
			"-tls-cert", pair.CertFile, "-tls-key", pair.KeyFile, "-backend", "http://127.0.0.1:9"}
		env = append(env, "GOMAXPROCS=1")
	case "haproxy":
		pem := filepath.Join(dir, filepath.Base(pair.CertFile)+".haproxy.pem")
		if err := concat(pem, pair.CertFile, pair.KeyFile); err != nil {
			return nil, err
		}
		cfg := fmt.Sprintf(`global
    nbthread 1
    maxconn 4000
    tune.ssl.cachesize 0
    ssl-default-bind-options no-tls-tickets
defaults
    mode http
    timeout connect 3s
    timeout client 30s
    timeout server 30s
frontend fe
    bind %s ssl crt %s alpn http/1.1 ssl-min-ver TLSv1.2 curves X25519:P-256
    http-request return status 200
`, addr, pem)
		path := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		argv = []string{tool("haproxy"), "-db", "-f", path}
	case "nginx":
		ndir := filepath.Join(dir, "nginx")
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return nil, err
		}
		user := ""
		if os.Geteuid() == 0 {
			user = "user root;"
		}
		cfg := fmt.Sprintf(`%s
daemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log crit;
events { worker_connections 4000; use epoll; }
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen %[3]s ssl;
        ssl_certificate %[4]s;
        ssl_certificate_key %[5]s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ecdh_curve X25519:prime256v1;
        return 200;
    }
}
`, user, ndir, addr, pair.CertFile, pair.KeyFile)
		path := filepath.Join(ndir, "nginx.conf")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return nil, err
		}
		argv = []string{tool("nginx"), "-p", ndir, "-c", path, "-e", filepath.Join(ndir, "error.log")}
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	if cpu >= 0 {
		if ts, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{ts, "-c", strconv.Itoa(cpu)}, argv...)
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s := &server{name: name, addr: addr, cmd: cmd}
	if err := waitListening(addr, 15*time.Second); err != nil {
		s.stop()
		log, _ := os.ReadFile(logf.Name())
		return nil, fmt.Errorf("%s: %w\n%s", name, err, log)
	}
	return s, nil
}

func (s *server) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// cpu is the CPU time of the server's process and its children (nginx's worker; taskset execs).
func (s *server) cpu() (time.Duration, error) {
	pids := []int{s.cmd.Process.Pid}
	var total int64
	for i := 0; i < len(pids); i++ {
		pid := pids[i]
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		t, err := statCPU(stat)
		if err != nil {
			return 0, err
		}
		total += t
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					pids = append(pids, c)
				}
			}
		}
	}
	return time.Duration(total) * time.Second / 100, nil // USER_HZ is 100
}

// statCPU returns utime+stime (fields 14 and 15) of a /proc/PID/stat line, in clock ticks.
func statCPU(stat []byte) (int64, error) {
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("stat: no command field")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("stat: short")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("stat: bad utime/stime")
	}
	return ut + st, nil
}

// pinPlan puts the server on the last CPU and the load generator on the first, when there are two
// or more; -1 leaves a side unpinned.
func pinPlan() (serverCPU, clientCPU int) {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil || set.Count() < 2 {
		return -1, -1
	}
	var cpus []int
	for i := 0; i < 1024; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus[len(cpus)-1], cpus[0]
}

func cpuSet(cpu int) *unix.CPUSet {
	var s unix.CPUSet
	s.Set(cpu)
	return &s
}

func render(rows []row, load string, serverCPU, clientCPU int, d time.Duration, reps, conc int) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "TLS full handshakes (X25519, no resumption), one server core; median of %d runs of %v, %d concurrent connections.\n", reps, d, conc)
	fmt.Fprintf(&b, "Machine: %d CPUs, host %s, load average before the run %s; server on CPU %d, load generator on CPU %d.\n\n",
		runtime.NumCPU(), host, load, serverCPU, clientCPU)
	b.WriteString("| server | certificate | TLS | handshakes/s | server CPU per handshake | server core busy | errors |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.0f µs | %.0f%% | %d |\n", r.server, r.key, r.version, r.r.rate,
			r.r.cpuPer.Seconds()*1e6, 100*r.r.busy, r.r.errors)
	}
	return b.String()
}

func versionName(v uint16) string {
	if v == tls.VersionTLS13 {
		return "1.3"
	}
	return "1.2"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func concat(dst string, srcs ...string) error {
	var all []byte
	for _, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		all = append(all, b...)
	}
	return os.WriteFile(dst, all, 0o600)
}

func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	return name
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not listening on %s within %v", addr, within)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsbench:", err)
		os.Exit(1)
	}
}
