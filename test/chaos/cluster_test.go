package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"sioproxy/health/consultest"
	"sioproxy/test/testkit"
)

// The Consul services: the backends of mainService are watched from the start; extraService is
// added to the replicas' discovery by a reload during the soak, and removed again by another.
const (
	mainService  = "chat"
	extraService = "chat2"
)

// Engine.IO timers of the backends. A short ping interval, so that a long-poll (which a stopping
// replica waits for) ends within 5 s; a ping timeout long enough for a loaded 2-core machine, where
// a backend's or a client's event loop can stall for seconds (a timeout of 5 s ended sessions in a
// run where Consul's 1 s checks were timing out too); and a replica's table forgets a session it
// did not see end pingInterval + pingTimeout + ttlMargin (18 s) after its last request.
const (
	pingInterval = 5 * time.Second
	pingTimeout  = 10 * time.Second
	ttlMargin    = 3 * time.Second
)

// cluster is everything the soak runs: a Consul agent, the backends, two replica slots and HAProxy.
type cluster struct {
	t      *testing.T
	agent  *consultest.Agent
	consul *api.Client
	main   []*testkit.Backend // the current process of each backend of mainService
	extra  *testkit.Backend   // the backend of extraService
	// every backend process ever started, and the SIGKILLed ones among them
	procs, killed []*testkit.Backend

	cfgPath  string
	services []string // what the config file watches now
	slots    []*slot
	front    *testkit.Proc
	frontURL string
}

// slot is one replica address: the generations of sioproxy processes that served it, the last
// one current (each replacement starts a new process on the same address).
type slot struct {
	name       string
	addr       string
	gens       []*testkit.Proxy
	baseline   resources
	baseStacks map[string]int // the baseline's goroutines by their first frame outside the runtime
}

func (s *slot) cur() *testkit.Proxy { return s.gens[len(s.gens)-1] }

// newCluster starts Consul, the backends (registered with HTTP checks), the two replicas and
// HAProxy in front of them, and waits until both replicas see every backend of mainService.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, agent: consultest.Start(t), services: []string{mainService}}
	c.consul = c.agent.Client()
	args := []string{"--allow-eio3", "--ping-interval", ms(pingInterval), "--ping-timeout", ms(pingTimeout)}
	for i := 1; i <= 3; i++ {
		c.main = append(c.main, testkit.LaunchBackend(t, fmt.Sprintf("chat-%d", i), "4", args...))
	}
	c.extra = testkit.LaunchBackend(t, "chat2-1", "4", args...)
	c.procs = append(append(c.procs, c.main...), c.extra)
	testkit.WaitReady(t, testkit.BackendReadyTimeout, c.procs...)
	c.registerAll()

	c.cfgPath = filepath.Join(t.TempDir(), "sioproxy.yaml")
	c.writeConfig()
	for _, name := range []string{"A", "B"} {
		s := &slot{name: name, addr: testkit.FreeAddr(t)}
		s.gens = append(s.gens, c.launchReplica(s))
		c.slots = append(c.slots, s)
	}
	for _, s := range c.slots {
		s.cur().WaitReady(t)
		c.waitStates(s.cur(), c.wantStates(), 20*time.Second)
	}
	c.startFront()
	return c
}

func ms(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }

// registerAll registers every backend with Consul (again, after a restart of the agent).
func (c *cluster) registerAll() {
	for _, b := range c.main {
		testkit.RegisterBackend(c.t, c.consul, b, mainService)
	}
	testkit.RegisterBackend(c.t, c.consul, c.extra, extraService)
}

// writeConfig writes the replicas' config file for the services watched now (atomically: a
// replica starting meanwhile reads the old file or the new one).
func (c *cluster) writeConfig() {
	c.t.Helper()
	y := fmt.Sprintf(`# chaos soak replicas (listen and admin-listen come from flags)
log:
  level: info
  format: json
discovery:
  consul:
    address: %s
    services: [%s]
    deregister_grace: 5s
sticky:
  session_ttl: %s # a session this replica did not see begin: the backends' pingInterval + pingTimeout
  ttl_margin: %s
proxy:
  shutdown_timeout: 15s
`, c.agent.Addr, strings.Join(c.services, ", "), pingInterval+pingTimeout, ttlMargin)
	tmp := c.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(y), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, c.cfgPath); err != nil {
		c.t.Fatal(err)
	}
}

// launchReplica starts the next generation of a slot's sioproxy on the slot's address (the
// listener has SO_REUSEPORT, so it binds beside a running one) with an admin listener of its own.
func (c *cluster) launchReplica(s *slot) *testkit.Proxy {
	c.t.Helper()
	return testkit.LaunchProxy(c.t, testkit.ProxySpec{
		Name: fmt.Sprintf("replica %s%d", s.name, len(s.gens)+1), Addr: s.addr, Admin: testkit.FreeAddr(c.t),
		Args: []string{"-config", c.cfgPath},
	})
}

// startFront starts HAProxy in mode tcp with a round robin over the two replica addresses: every
// new TCP connection goes to the next replica, so that the polling requests of one session (a
// connection each with socket.io-client in Node) alternate between the replicas.
func (c *cluster) startFront() {
	c.t.Helper()
	addr := testkit.FreeAddr(c.t)
	// Abnormal connections only (dontlog-normal): a reset or an early close is logged with its
	// termination flags, which the soak counts.
	cfg := fmt.Sprintf(`global
    maxconn 8000
    nbthread 1
    log stderr format raw local0 info

defaults
    mode tcp
    log global
    option tcplog
    option dontlog-normal
    timeout connect 3s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch

frontend soak
    bind %s
    default_backend replicas

backend replicas
    balance roundrobin
    server a %s
    server b %s
`, addr, c.slots[0].addr, c.slots[1].addr)
	c.front = testkit.StartHAProxy(c.t, "haproxy", cfg, addr)
	c.frontURL = "http://" + addr
}

// replicas returns the current process of each slot.
func (c *cluster) replicas() []*testkit.Proxy {
	out := make([]*testkit.Proxy, len(c.slots))
	for i, s := range c.slots {
		out[i] = s.cur()
	}
	return out
}

// wantStates is the /backends a replica shows when every watched backend is active.
func (c *cluster) wantStates() map[string]string {
	m := map[string]string{}
	for _, b := range c.main {
		m[b.Name] = "active"
	}
	for _, s := range c.services {
		if s == extraService {
			m[c.extra.Name] = "active"
		}
	}
	return m
}

// waitStates waits until a replica's /backends shows exactly want; it fails the test after timeout.
func (c *cluster) waitStates(px *testkit.Proxy, want map[string]string, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	var got map[string]string
	if !testkit.WaitFor(timeout, func() bool { got = px.States(c.t); return mapsEqual(got, want) }) {
		c.t.Fatalf("%s: /backends shows %v after %v, want %v", px.Name, got, timeout, want)
	}
	return time.Since(start)
}

// waitAll waits until cond holds for every current replica and returns how long that took; after
// timeout it reports an error naming what and returns -1.
func (c *cluster) waitAll(what string, timeout time.Duration, cond func(px *testkit.Proxy) bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	if !testkit.WaitFor(timeout, func() bool {
		for _, px := range c.replicas() {
			if !cond(px) {
				return false
			}
		}
		return true
	}) {
		c.t.Errorf("%s: not within %v", what, timeout)
		return -1
	}
	return time.Since(start)
}

// stateIs returns a condition: the backend id has state in a replica's /backends ("" = absent).
func (c *cluster) stateIs(id, state string) func(px *testkit.Proxy) bool {
	return func(px *testkit.Proxy) bool { return px.States(c.t)[id] == state }
}

// reload rewrites the config for services and sends SIGHUP to every current replica, waiting for
// each to log the reload.
func (c *cluster) reload(services []string) {
	c.t.Helper()
	c.services = services
	c.writeConfig()
	for _, px := range c.replicas() {
		mark := px.Len()
		if err := px.Signal(syscall.SIGHUP); err != nil {
			c.t.Fatalf("%s: SIGHUP: %v", px.Name, err)
		}
		line, _, err := px.WaitLine(mark, 10*time.Second, func(l string) bool {
			return strings.Contains(l, `"reloaded"`) || strings.Contains(l, "reload refused")
		})
		if err != nil {
			c.t.Fatalf("%s: no reload logged after SIGHUP: %v", px.Name, err)
		}
		if !strings.Contains(line, `"reloaded"`) {
			c.t.Fatalf("%s: reload refused: %s", px.Name, line)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// backendCounts sums sessions and tunnels of the backend id over a replica's /backends.
func backendCounts(t *testing.T, px *testkit.Proxy, id string) (sessions, tunnels int64) {
	for _, b := range px.Backends(t) {
		if b.ID == id {
			return b.Sessions, b.Tunnels
		}
	}
	return 0, 0
}
