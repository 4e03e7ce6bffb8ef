// Package consultest runs a real Consul agent (dev mode, loopback only, private ports)
// for tests. The binary comes from $SIOPROXY_CONSUL, else from the cache that
// test/consul/build.sh fills; a missing binary fails the test, it never skips.
package consultest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"sioproxy/internal/cachedbin"
)

// Version is the Consul version the tests run.
const Version = "1.14.11"

// NodeName is the node name of the agent.
const NodeName = "sioproxy-test"

// readyTimeout bounds the wait for a leader and the node's registration.
const readyTimeout = 30 * time.Second

// Agent is one running (or killed) Consul dev agent.
type Agent struct {
	// Addr is the host:port of the HTTP API; it stays the same across Restart.
	Addr string

	t       testing.TB
	bin     string
	dir     string
	logPath string
	ports   ports

	// HTTPSAddr is the host:port of the HTTPS API of an agent started with StartTLS ("" else).
	HTTPSAddr string
	tls       *TLS

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

type ports struct{ http, https, serfLAN, serfWAN, server int }

// TLS is the HTTPS listener of an agent started with StartTLS: its certificate and key, the CA
// it checks client certificates against, and whether it requires one.
type TLS struct {
	CAFile, CertFile, KeyFile string
	VerifyIncoming            bool
}

// Binary returns the path of the Consul agent binary: $SIOPROXY_CONSUL, else
// consul-<Version> under $SIOPROXY_CACHE, $XDG_CACHE_HOME/sioproxy or ~/.cache/sioproxy.
func Binary() (string, error) {
	bin, err := cachedbin.Path("SIOPROXY_CONSUL", "consul-"+Version)
	if err != nil {
		return "", err
	}
	if err := cachedbin.Executable(bin); err != nil {
		return "", fmt.Errorf("consul agent binary: %w (set SIOPROXY_CONSUL or run test/consul/build.sh)", err)
	}
	return bin, nil
}

// Start launches an agent and waits until it has a leader and its node is in the
// catalog. It fails t when the binary is missing or the agent does not come up. The
// agent is stopped when t ends.
func Start(t testing.TB) *Agent {
	t.Helper()
	return start(t, nil)
}

// StartTLS is Start with the HTTP API also served over TLS (HTTPSAddr), as a production agent
// with TLS is configured (Consul's tls.https stanza); the plain HTTP API stays for Client.
func StartTLS(t testing.TB, tl TLS) *Agent {
	t.Helper()
	return start(t, &tl)
}

func start(t testing.TB, tl *TLS) *Agent {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	p, err := freePorts()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a := &Agent{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.http)),
		t:    t, bin: bin, dir: dir, logPath: filepath.Join(dir, "consul.log"), ports: p, tls: tl,
	}
	if tl != nil {
		a.HTTPSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p.https))
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("consul agent log (tail):\n%s", a.LogTail(60))
		}
	})
	a.start()
	return a
}

// Client returns an API client for the agent.
func (a *Agent) Client() *api.Client {
	a.t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = a.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

func (a *Agent) start() {
	a.t.Helper()
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	defer logf.Close()
	p := a.ports
	a.starts++
	// Dev mode keeps the catalog in memory, but the agent still persists its own
	// services, checks and TTL states in -data-dir and reloads them (checks as
	// critical). Each start gets a fresh directory: a restarted agent knows nothing.
	data := filepath.Join(a.dir, fmt.Sprintf("data-%d", a.starts))
	cmd := exec.Command(a.bin, "agent", "-dev",
		"-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-node", NodeName, "-data-dir", data,
		"-http-port", strconv.Itoa(p.http), "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", strconv.Itoa(p.serfLAN), "-serf-wan-port", strconv.Itoa(p.serfWAN),
		"-server-port", strconv.Itoa(p.server),
		"-log-level", "info", "-disable-host-node-id",
	)
	if tl := a.tls; tl != nil {
		cmd.Args = append(cmd.Args, "-https-port", strconv.Itoa(p.https), "-hcl", fmt.Sprintf(
			`tls { https { ca_file = %q cert_file = %q key_file = %q verify_incoming = %t } }`,
			tl.CAFile, tl.CertFile, tl.KeyFile, tl.VerifyIncoming))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("start consul agent %s: %v", a.bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	a.mu.Lock()
	a.cmd, a.exited = cmd, exited
	a.mu.Unlock()
	if err := a.waitReady(exited); err != nil {
		a.t.Fatalf("consul agent on %s: %v\n%s", a.Addr, err, a.LogTail(40))
	}
}

// waitReady polls the HTTP API until there is a leader and the node is registered.
func (a *Agent) waitReady(exited <-chan struct{}) error {
	cfg := api.DefaultConfig()
	cfg.Address = a.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	deadline := time.After(readyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-exited:
			return errors.New("agent exited during start-up")
		case <-deadline:
			return fmt.Errorf("not ready after %v: %v", readyTimeout, last)
		case <-tick.C:
		}
		leader, err := c.Status().Leader()
		if err != nil || leader == "" {
			last = fmt.Errorf("leader %q: %v", leader, err)
			continue
		}
		node, _, err := c.Catalog().Node(NodeName, nil)
		if err != nil || node == nil {
			last = fmt.Errorf("node not registered: %v", err)
			continue
		}
		return nil
	}
}

// Kill ends the agent with SIGKILL (a crash: no leave, no goodbye) and waits for it.
func (a *Agent) Kill() { a.signal(syscall.SIGKILL, 0) }

// Stop ends the agent gracefully (SIGINT: leave), killing it after 10 s. Idempotent.
func (a *Agent) Stop() { a.signal(syscall.SIGINT, 10*time.Second) }

func (a *Agent) signal(sig syscall.Signal, grace time.Duration) {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	if grace > 0 {
		select {
		case <-exited:
			return
		case <-time.After(grace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	<-exited
}

// Restart stops the agent if it runs and starts a fresh one on the same ports, with no
// state at all: services must be registered again, and the Raft index starts over
// (lower than before). Call it from the goroutine of the test given to Start.
func (a *Agent) Restart() {
	a.t.Helper()
	a.Stop()
	a.start()
}

// LogTail returns the last n lines of the agent's output.
func (a *Agent) LogTail(n int) string {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePorts picks loopback ports free for TCP (and UDP for Serf, which gossips on both).
func freePorts() (ports, error) {
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	pick := func(udp bool) (int, error) {
		for range 50 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, err
			}
			port := l.Addr().(*net.TCPAddr).Port
			closers = append(closers, func() { l.Close() })
			if !udp {
				return port, nil
			}
			u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				continue
			}
			closers = append(closers, func() { u.Close() })
			return port, nil
		}
		return 0, errors.New("no free port")
	}
	var p ports
	var err error
	if p.http, err = pick(false); err != nil {
		return p, err
	}
	if p.https, err = pick(false); err != nil {
		return p, err
	}
	if p.serfLAN, err = pick(true); err != nil {
		return p, err
	}
	if p.serfWAN, err = pick(true); err != nil {
		return p, err
	}
	p.server, err = pick(false)
	return p, err
}
