// Package kubetest runs a real kube-apiserver on a real etcd for tests: no kubelet, no
// controller manager (tests write EndpointSlices themselves, as the EndpointSlice
// controller would). The API server binary comes from $SIOPROXY_KUBE_APISERVER, else
// from the cache that test/k8s/build.sh fills; etcd from $SIOPROXY_ETCD, else etcd on
// PATH (Debian's etcd-server). A missing binary fails the test, it never skips.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"sioproxy/internal/cachedbin"
	"sioproxy/internal/testpki"
)

// Version is the kube-apiserver release the tests run (test/k8s/build.sh builds it).
const Version = "v1.37.2"

// readyTimeout bounds the start of etcd and of the API server (a loaded 2-core box
// takes several seconds for the API server's post-start hooks).
const readyTimeout = 90 * time.Second

// Admin is the user of AdminKubeconfig: a member of system:masters.
const Admin = "admin"

// Binary returns the kube-apiserver binary: $SIOPROXY_KUBE_APISERVER, else
// kube-apiserver-<Version> under $SIOPROXY_CACHE, $XDG_CACHE_HOME/sioproxy or
// ~/.cache/sioproxy.
func Binary() (string, error) {
	bin, err := cachedbin.Path("SIOPROXY_KUBE_APISERVER", "kube-apiserver-"+Version)
	if err != nil {
		return "", err
	}
	if err := cachedbin.Executable(bin); err != nil {
		return "", fmt.Errorf("kube-apiserver: %w (set SIOPROXY_KUBE_APISERVER or run test/k8s/build.sh)", err)
	}
	return bin, nil
}

// EtcdBinary returns the etcd binary: $SIOPROXY_ETCD, else etcd on PATH.
func EtcdBinary() (string, error) {
	bin := os.Getenv("SIOPROXY_ETCD")
	if bin == "" {
		p, err := exec.LookPath("etcd")
		if err != nil {
			return "", errors.New("etcd not found on PATH (apt-get install etcd-server, or set SIOPROXY_ETCD)")
		}
		bin = p
	}
	if err := cachedbin.Executable(bin); err != nil {
		return "", fmt.Errorf("etcd: %w", err)
	}
	return bin, nil
}

// Check reports the first missing binary, with a hint.
func Check() error {
	if _, err := EtcdBinary(); err != nil {
		return err
	}
	_, err := Binary()
	return err
}

// Options configure Start.
type Options struct {
	// Host is the address etcd and the API server listen on; "" = 127.0.0.1.
	Host string
	// Users get a bearer token each (no groups: RBAC grants them nothing until a test
	// binds a role); see Kubeconfig.
	Users []string
}

// Cluster is a running etcd and kube-apiserver. The API server can be killed and
// started again on the same address, over the same etcd.
type Cluster struct {
	Host string
	// URL is the API server's https URL; it stays the same across restarts.
	URL string
	// AdminKubeconfig is a kubeconfig file of the Admin user.
	AdminKubeconfig string

	t       testing.TB
	dir     string
	bin     string
	etcdURL string
	port    int
	tokens  map[string]string
	ca      *testpki.CA
	server  testpki.Pair // the API server's certificate

	mu     sync.Mutex
	api    *proc
	etcd   *proc
	starts int
}

// proc is a child process and the channel closed when it has exited.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// Start runs etcd and the API server, and waits until the API server is ready (its
// post-start hooks done, RBAC's bootstrap roles and the default namespace in place).
// Both are stopped when t ends.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	etcdBin, err := EtcdBinary()
	if err != nil {
		t.Fatal(err)
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	dir := t.TempDir()
	c := &Cluster{Host: o.Host, t: t, dir: dir, bin: bin, tokens: map[string]string{}}
	ports, err := freePorts(o.Host, 3)
	if err != nil {
		t.Fatal(err)
	}
	c.port = ports[2]
	c.URL = "https://" + net.JoinHostPort(o.Host, strconv.Itoa(c.port))
	c.etcdURL = "http://" + net.JoinHostPort(o.Host, strconv.Itoa(ports[0]))
	if err := c.writeFiles(append([]string{Admin}, o.Users...)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("kube-apiserver log (tail):\n%s", c.LogTail(40))
		}
	})
	peer := "http://" + net.JoinHostPort(o.Host, strconv.Itoa(ports[1]))
	etcdData := filepath.Join(dir, "etcd")
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() { // tmpfs: no fsync cost
		if d, err := os.MkdirTemp("/dev/shm", "sioproxy-etcd-"); err == nil {
			etcdData = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	c.etcd = c.spawn("etcd", etcdBin, "--name", "default", "--data-dir", etcdData,
		"--listen-client-urls", c.etcdURL, "--advertise-client-urls", c.etcdURL,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default="+peer, "--logger", "zap", "--log-level", "warn")
	if err := c.waitEtcd(); err != nil {
		t.Fatalf("etcd on %s: %v\n%s", c.etcdURL, err, tail(c.etcd.log, 30))
	}
	c.StartAPIServer()
	return c
}

// writeFiles writes the certificates, the service-account key, the token file and one
// kubeconfig per user.
func (c *Cluster) writeFiles(users []string) error {
	ca, err := testpki.NewCA(c.dir, "sioproxy-test")
	if err != nil {
		return err
	}
	c.ca = ca
	c.server, err = ca.Server("kube-apiserver", testpki.ECDSAP256, c.Host, "127.0.0.1",
		"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	files := map[string][]byte{"sa.key": ecPEM(saKey)}
	var tokens bytes.Buffer
	for i, u := range users {
		tok := randomToken()
		c.tokens[u] = tok
		fmt.Fprintf(&tokens, "%s,%s,uid-%d", tok, u, i)
		if u == Admin {
			tokens.WriteString(",system:masters")
		}
		tokens.WriteByte('\n')
	}
	files["tokens.csv"] = tokens.Bytes()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), b, 0o600); err != nil {
			return err
		}
	}
	for _, u := range users {
		if err := c.writeKubeconfig(u); err != nil {
			return err
		}
	}
	c.AdminKubeconfig = c.Kubeconfig(Admin)
	return nil
}

func ecPEM(k *ecdsa.PrivateKey) []byte {
	der, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func (c *Cluster) writeKubeconfig(user string) error {
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: %s, namespace: default}
current-context: test
`, c.URL, c.ca.CertFile, user, c.tokens[user], user)
	return os.WriteFile(c.Kubeconfig(user), []byte(kc), 0o600)
}

// Kubeconfig is the path of the kubeconfig file of user (Admin or one of Options.Users).
func (c *Cluster) Kubeconfig(user string) string {
	return filepath.Join(c.dir, "kubeconfig-"+user)
}

// Token is the bearer token of user.
func (c *Cluster) Token(user string) string { return c.tokens[user] }

// Client returns a client of user.
func (c *Cluster) Client(user string) kubernetes.Interface {
	c.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig(user))
	if err != nil {
		c.t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	cl, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

func (c *Cluster) spawn(name, bin string, args ...string) *proc {
	c.t.Helper()
	logPath := filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", name, c.starts))
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", bin, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p
}

// waitEtcd polls etcd's /health.
func (c *Cluster) waitEtcd() error {
	return poll(c.etcd, readyTimeout, func() error {
		resp, err := http.Get(c.etcdURL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
}

// StartAPIServer starts the API server (after KillAPIServer) on the same address and
// waits until it is ready. Call it from the test's goroutine.
func (c *Cluster) StartAPIServer() {
	c.t.Helper()
	c.mu.Lock()
	c.starts++
	c.mu.Unlock()
	f := func(n string) string { return filepath.Join(c.dir, n) }
	api := c.spawn("kube-apiserver", c.bin,
		"--etcd-servers="+c.etcdURL,
		"--bind-address="+c.Host, "--advertise-address="+c.Host, "--secure-port="+strconv.Itoa(c.port),
		"--tls-cert-file="+c.server.CertFile, "--tls-private-key-file="+c.server.KeyFile, "--cert-dir="+f("certs"),
		"--token-auth-file="+f("tokens.csv"), "--authorization-mode=RBAC", "--anonymous-auth=false",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+f("sa.key"), "--service-account-signing-key-file="+f("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/24", "--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false", "--profiling=false", "--enable-garbage-collector=false",
		"--v=1",
	)
	c.mu.Lock()
	c.api = api
	c.mu.Unlock()
	if err := c.waitReady(api); err != nil {
		c.t.Fatalf("kube-apiserver on %s: %v\n%s", c.URL, err, tail(api.log, 40))
	}
}

// waitReady polls /readyz, then waits for the default namespace.
func (c *Cluster) waitReady(api *proc) error {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.ca.Pool()}}}
	defer hc.CloseIdleConnections()
	get := func(path string) error {
		req, _ := http.NewRequest("GET", c.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+c.tokens[Admin])
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	}
	return poll(api, readyTimeout, func() error {
		if err := get("/readyz"); err != nil {
			return err
		}
		return get("/api/v1/namespaces/default")
	})
}

// poll calls f every 100 ms until it succeeds, p exits or timeout passes.
func poll(p *proc, timeout time.Duration, f func() error) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = f(); last == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited during start-up: %v", last)
		case <-deadline:
			return fmt.Errorf("not ready after %v: %v", timeout, last)
		case <-tick.C:
		}
	}
}

// KillAPIServer ends the API server with SIGKILL (a crash) and waits for it; etcd
// keeps running.
func (c *Cluster) KillAPIServer() {
	c.mu.Lock()
	p := c.api
	c.mu.Unlock()
	kill(p, syscall.SIGKILL, 0)
}

// Stop ends the API server and etcd. Idempotent.
func (c *Cluster) Stop() {
	c.mu.Lock()
	api, etcd := c.api, c.etcd
	c.mu.Unlock()
	kill(api, syscall.SIGTERM, 5*time.Second)
	kill(etcd, syscall.SIGTERM, 5*time.Second)
}

func kill(p *proc, sig syscall.Signal, grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	if grace > 0 {
		select {
		case <-p.exited:
			return
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	<-p.exited
}

// LogTail returns the last n lines of the current API server's output.
func (c *Cluster) LogTail(n int) string {
	c.mu.Lock()
	p := c.api
	c.mu.Unlock()
	if p == nil {
		return ""
	}
	return tail(p.log, n)
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts picks n TCP ports free on host.
func freePorts(host string, n int) ([]int, error) {
	var out []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// Ctx returns a context for one API call of a test (10 s).
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
