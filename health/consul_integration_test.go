package health

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap/zaptest"

	"sioproxy/balancer"
	"sioproxy/health/consultest"
	"sioproxy/internal/testpki"
)

// recorder keeps the last set a watcher published and wakes waiters on every publish.
type recorder struct {
	mu     sync.Mutex
	last   []balancer.Spec
	count  int
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) publish(_ string, specs []balancer.Spec) {
	r.mu.Lock()
	r.last, r.count = specs, r.count+1
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() ([]balancer.Spec, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.count
}

// states renders a set as "id=state" pairs for comparisons and messages.
func states(specs []balancer.Spec) string {
	s := ""
	for _, sp := range specs {
		s += fmt.Sprintf("%s=%s ", sp.ID, sp.State)
	}
	return s
}

// waitFor waits until the published set renders as want and returns the time since start.
func (r *recorder) waitFor(t *testing.T, start time.Time, limit time.Duration, want string) time.Duration {
	t.Helper()
	deadline := time.After(limit)
	for {
		last, _ := r.snapshot()
		if states(last) == want {
			return time.Since(start)
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("after %v published %q, want %q", limit, states(last), want)
		}
	}
}

// runWatcher runs a ConsulWatcher with opts (its Publish and Logger set here) until stop.
func runWatcher(t *testing.T, opts ConsulOptions) (w *ConsulWatcher, rec *recorder, stop func()) {
	t.Helper()
	rec = newRecorder()
	opts.Publish, opts.Logger = rec.publish, zaptest.NewLogger(t)
	w, err := NewConsulWatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	return w, rec, func() { cancel(); <-done }
}

func register(t *testing.T, c *api.Client, id string, port int) {
	t.Helper()
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: "web", Address: "127.0.0.1", Port: port,
		Check: &api.AgentServiceCheck{CheckID: "ttl:" + id, TTL: "10m", Status: api.HealthPassing},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConsulWatcherAgainstConsul drives a real Consul agent through maintenance, failing
// checks, deregistration, a crash and a restart, and measures how fast each change
// reaches Publish.
func TestConsulWatcherAgainstConsul(t *testing.T) {
	agent := consultest.Start(t)
	c := agent.Client()
	for i, id := range []string{"web-1", "web-2", "web-3"} {
		register(t, c, id, 9001+i)
	}
	w, rec, stop := runWatcher(t, ConsulOptions{
		Address: agent.Addr, Services: []string{"web"}, DeregisterGrace: time.Second, WaitTime: 10 * time.Second,
		MinInterval: 20 * time.Millisecond, BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
	})
	defer stop()

	const all = "web-1=active web-2=active web-3=active "
	start := time.Now()
	d := rec.waitFor(t, start, 5*time.Second, all)
	t.Logf("initial set published after %v", d)
	if last, _ := rec.snapshot(); last[0].Addr != "127.0.0.1:9001" || last[0].Source != SourceConsul || last[0].Weight != 1 {
		t.Fatalf("spec %+v", last[0])
	}

	steps := []struct {
		name  string
		do    func() error
		want  string
		limit time.Duration
	}{
		{"service maintenance on", func() error { return c.Agent().EnableServiceMaintenance("web-2", "test") },
			"web-1=active web-2=draining web-3=active ", 2 * time.Second},
		{"service maintenance off", func() error { return c.Agent().DisableServiceMaintenance("web-2") },
			all, 3 * time.Second},
		{"check critical", func() error { return c.Agent().UpdateTTL("ttl:web-3", "down", api.HealthCritical) },
			"web-1=active web-2=active web-3=draining ", 2 * time.Second},
		{"check passing", func() error { return c.Agent().UpdateTTL("ttl:web-3", "ok", api.HealthPassing) },
			all, 3 * time.Second},
		{"check warning (not eligible)", func() error { return c.Agent().UpdateTTL("ttl:web-3", "slow", api.HealthWarning) },
			"web-1=active web-2=active web-3=draining ", 2 * time.Second},
		{"check passing again", func() error { return c.Agent().UpdateTTL("ttl:web-3", "ok", api.HealthPassing) },
			all, 3 * time.Second},
		{"node maintenance on", func() error { return c.Agent().EnableNodeMaintenance("test") },
			"web-1=draining web-2=draining web-3=draining ", 2 * time.Second},
		{"node maintenance off", func() error { return c.Agent().DisableNodeMaintenance() },
			all, 3 * time.Second},
		{"deregister (grace)", func() error { return c.Agent().ServiceDeregister("web-1") },
			"web-1=draining web-2=active web-3=active ", 2 * time.Second},
		{"deregister (dropped after 1 s grace)", func() error { return nil },
			"web-2=active web-3=active ", 3 * time.Second},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		d := rec.waitFor(t, start, s.limit, s.want)
		t.Logf("%-38s propagated in %v", s.name+":", d)
	}

	// Consul crashes: the watcher keeps the last set and reports unhealthy.
	before, count := rec.snapshot()
	start = time.Now()
	agent.Kill()
	pollUntil(t, 5*time.Second, func() bool { return !w.Healthy() })
	t.Logf("%-38s detected in %v (kill included)", "consul killed:", time.Since(start))
	// Let a few retries fail (BackoffMax is 500 ms) before looking at the set again.
	pollUntil(t, 5*time.Second, func() bool { return w.LastIndexAge() > 1500*time.Millisecond })
	after, afterCount := rec.snapshot()
	if !slices.Equal(before, after) || afterCount != count {
		t.Fatalf("set changed while Consul is down: %q (%d publishes) -> %q (%d)", states(before), count, states(after), afterCount)
	}
	if age := w.LastIndexAge(); age < time.Since(start) {
		t.Fatalf("LastIndexAge = %v, want at least the %v since the kill", age, time.Since(start))
	}

	// Consul comes back empty (dev mode keeps no state); the services register again.
	agent.Restart()
	start = time.Now()
	register(t, c, "web-2", 9002)
	register(t, c, "web-3", 9003)
	register(t, c, "web-4", 9004)
	d = rec.waitFor(t, start, 5*time.Second, "web-2=active web-3=active web-4=active ")
	t.Logf("%-38s propagated in %v", "consul restarted, re-registered:", d)
	if !w.Healthy() {
		t.Fatal("Healthy() = false after Consul is back")
	}
	start = time.Now()
	if err := c.Agent().EnableServiceMaintenance("web-4", "test"); err != nil {
		t.Fatal(err)
	}
	d = rec.waitFor(t, start, 2*time.Second, "web-2=active web-3=active web-4=draining ")
	t.Logf("%-38s propagated in %v", "maintenance after restart:", d)
}

// pollUntil checks cond every 10 ms (it reads the state of another process: there is
// no channel to wait on) and fails t after limit.
func pollUntil(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("condition not met after %v", limit)
		}
		<-tick.C
	}
}

// TestConsulWatcherOverTLS follows a real Consul agent over its HTTPS API, which verifies client
// certificates: discovery.consul.tls (CA, client certificate and key) reaches the Consul client.
// Without the client certificate, or trusting another CA, the watcher gets nothing.
func TestConsulWatcherOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := testpki.NewCA(dir, "consul-ca")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Server("consul", testpki.ECDSAP256, "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Client("sioproxy", testpki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA(filepath.Join(dir, "other"), "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	agent := consultest.StartTLS(t, consultest.TLS{CAFile: ca.CertFile, CertFile: srv.CertFile, KeyFile: srv.KeyFile, VerifyIncoming: true})
	register(t, agent.Client(), "web-1", 9001)
	watch := func(t *testing.T, tl ConsulTLS) (*recorder, func()) {
		_, rec, stop := runWatcher(t, ConsulOptions{
			Address: agent.HTTPSAddr, TLS: tl, Services: []string{"web"}, WaitTime: 10 * time.Second,
			MinInterval: 20 * time.Millisecond, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		})
		return rec, stop
	}
	t.Run("with the client certificate", func(t *testing.T) {
		rec, stop := watch(t, ConsulTLS{CAFile: ca.CertFile, CertFile: cli.CertFile, KeyFile: cli.KeyFile})
		defer stop()
		d := rec.waitFor(t, time.Now(), 10*time.Second, "web-1=active ")
		t.Logf("published over TLS after %v", d)
	})
	for _, tc := range []struct {
		name string
		tls  ConsulTLS
	}{
		{"without a client certificate", ConsulTLS{CAFile: ca.CertFile}},
		{"trusting another CA", ConsulTLS{CAFile: other.CertFile, CertFile: cli.CertFile, KeyFile: cli.KeyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, stop := watch(t, tc.tls)
			// The good watcher published within milliseconds; this one must publish nothing while
			// several of its queries (backoff 50-200 ms) fail.
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				if last, n := rec.snapshot(); n > 0 {
					stop()
					t.Fatalf("the watcher published a set from Consul (%q)", states(last))
				}
				select {
				case <-rec.notify:
				case <-time.After(100 * time.Millisecond):
				}
			}
			stop()
		})
	}
}
