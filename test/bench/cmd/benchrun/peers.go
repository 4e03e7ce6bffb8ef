package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Timeouts shared by every proxy, set to sioproxy's defaults (configs: dial 3s, upstream 90s,
// tunnel idle 90s).
const (
	dialTimeout = "3s"
	idleTimeout = "90s"
)

// maxConnsPeers is the connection limit given to HAProxy and nginx: what the file limit allows
// (two descriptors per proxied connection, some spare).
var maxConnsPeers = func() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur < 2000 {
		return 1000
	}
	return int(r.Cur-200) / 2
}()

// peer is one process (or process group) under test, reachable at URL.
type peer struct {
	Name string
	URL  string
	cmd  *exec.Cmd
}

// pids lists the main process and its direct children (nginx's worker).
func (p *peer) pids() []int {
	if p.cmd == nil || p.cmd.Process == nil {
		return nil
	}
	pid := p.cmd.Process.Pid
	out := []int{pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func (p *peer) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls addr until it accepts a connection or the deadline passes.
func waitListening(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %v: %w", addr, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startBackend runs benchbackend with n listeners and returns it and its URLs.
func startBackend(bin string, n int, ping time.Duration, logDir string) (*peer, []string, error) {
	cmd := exec.Command(bin, "-n", strconv.Itoa(n), "-ping-interval", ping.String())
	cmd.Stderr = mustCreate(filepath.Join(logDir, "backend.log"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	p := &peer{Name: "backend", cmd: cmd}
	sc := bufio.NewScanner(out)
	var urls []string
	for len(urls) < n && sc.Scan() {
		urls = append(urls, strings.TrimSpace(sc.Text()))
	}
	if len(urls) < n {
		p.stop()
		return nil, nil, fmt.Errorf("benchbackend printed %d of %d URLs", len(urls), n)
	}
	p.URL = urls[0]
	return p, urls, nil
}

// startSioproxy runs sioproxy with GOMAXPROCS=procs in front of backends.
func startSioproxy(bin string, backends []string, procs int, logDir string) (*peer, error) {
	return startSioproxyArgs(bin, backends, procs, logDir, nil)
}

// startSioproxyArgs is startSioproxy with extra environment variables and flags (later flags win).
func startSioproxyArgs(bin string, backends []string, procs int, logDir string, env []string, extra ...string) (*peer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"-listen", addr, "-admin-listen", "", "-log-level", "error"}
	for _, b := range backends {
		args = append(args, "-backend", b)
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.Env = append(append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", procs)), env...)
	return startPeer("sioproxy", cmd, addr, logDir)
}

// startHAProxy writes an equivalent HAProxy config (one thread) and runs it in the foreground.
func startHAProxy(backend, dir string) (*peer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`global
    nbthread 1
    maxconn %d
    tune.bufsize 16384

defaults
    mode http
    option http-keep-alive
    timeout connect %s
    timeout client %s
    timeout server %s
    timeout http-keep-alive %s
    timeout http-request 10s
    timeout tunnel %s
    maxconn %d

frontend fe
    bind %s
    default_backend be

backend be
    balance roundrobin
    http-reuse safe
    server s1 %s maxconn %d
`, maxConnsPeers, dialTimeout, idleTimeout, idleTimeout, idleTimeout, idleTimeout, maxConnsPeers, addr,
		strings.TrimPrefix(backend, "http://"), maxConnsPeers)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("haproxy", "-f", path, "-db")
	return startPeer("haproxy", cmd, addr, dir)
}

// startNginx writes an equivalent nginx config (one worker) and runs it in the foreground.
func startNginx(backend, dir string) (*peer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ndir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(ndir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`daemon off;
worker_processes 1;
worker_rlimit_nofile %d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log crit;
events {
    worker_connections %[7]d;
    use epoll;
}
http {
    access_log off;
    client_body_temp_path %[2]s/body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    keepalive_timeout %[3]s;
    keepalive_requests 1000000;
    upstream be {
        server %[4]s;
        keepalive 512;
        keepalive_timeout %[3]s;
        keepalive_requests 1000000;
    }
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      '';
    }
    server {
        listen %[5]s backlog=65535;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_connect_timeout %[6]s;
            proxy_read_timeout %[3]s;
            proxy_send_timeout %[3]s;
            proxy_buffering off;
        }
    }
}
`, 2*maxConnsPeers+100, ndir, idleTimeout, strings.TrimPrefix(backend, "http://"), addr, dialTimeout, 2*maxConnsPeers)
	path := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("nginx", "-p", ndir, "-c", path, "-e", filepath.Join(ndir, "error.log"))
	return startPeer("nginx", cmd, addr, dir)
}

// peerWrap, when set, wraps the command of the next peers started (the profile mode runs them
// under perf trace).
var peerWrap func(*exec.Cmd) *exec.Cmd

func startPeer(name string, cmd *exec.Cmd, addr, logDir string) (*peer, error) {
	if peerWrap != nil {
		cmd = peerWrap(cmd)
	}
	f := mustCreate(filepath.Join(logDir, name+".log"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &peer{Name: name, URL: "http://" + addr, cmd: cmd}
	if err := waitListening(addr, 10*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %w (see %s)", name, err, f.Name())
	}
	return p, nil
}

func mustCreate(path string) *os.File {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
	return f
}
