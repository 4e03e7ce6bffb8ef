package consule2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"sioproxy/health/consultest"
	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

// service is the Consul service name the backends register under and the proxy watches.
const service = "chat"

// cluster is a Consul dev agent, socket.io backends registered in it, and (once started) a proxy.
type cluster struct {
	agent  *consultest.Agent
	consul *api.Client
	bs     []*testkit.Backend
	px     *proxyProc
}

// newCluster starts a Consul agent and n backends chat-1..chat-n, registered with HTTP checks.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{agent: consultest.Start(t)}
	c.consul = c.agent.Client()
	c.bs = testkit.StartBackends(t, n, "chat-%d", "4")
	c.registerAll(t)
	return c
}

// registerAll registers every backend as an instance of service.
func (c *cluster) registerAll(t *testing.T) {
	t.Helper()
	for _, b := range c.bs {
		registerService(t, c, b, service)
	}
}

// registerService registers a backend as an instance of svc (testkit.RegisterBackend: an HTTP check
// against its Engine.IO handshake URL, interval 1 s, passing from the start).
func registerService(t *testing.T, c *cluster, b *testkit.Backend, svc string) {
	t.Helper()
	testkit.RegisterBackend(t, c.consul, b, svc)
}

// checkStatus returns the status of a backend's HTTP check as Consul reports it.
func (c *cluster) checkStatus(t *testing.T, name string) string {
	t.Helper()
	return testkit.ConsulCheckStatus(t, c.consul, service, name)
}

func (c *cluster) names() []string {
	out := make([]string, len(c.bs))
	for i, b := range c.bs {
		out[i] = b.Name
	}
	return out
}

// allStates maps every backend to the same state.
func (c *cluster) allStates(state string) map[string]string {
	m := map[string]string{}
	for _, b := range c.bs {
		m[b.Name] = state
	}
	return m
}

// startProxy starts sioproxy with discovery from flags and waits until every backend is active in
// /backends. With config YAML, the flags are given over a file that holds it (flags only otherwise).
func (c *cluster) startProxy(t *testing.T, config ...string) *proxyProc {
	t.Helper()
	args := []string{"-consul-addr", c.agent.Addr, "-consul-service", service, "-log-level", "info"}
	if len(config) > 0 {
		path := filepath.Join(t.TempDir(), "sioproxy.yaml")
		if err := os.WriteFile(path, []byte(strings.Join(config, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-config", path)
	}
	c.px = launchProxy(t, args...)
	c.px.waitStates(t, c.allStates("active"), 15*time.Second)
	return c.px
}

// proxyProc is a running sioproxy with its admin listener and an HTTP client for it.
type proxyProc struct {
	*testkit.Proxy
	http *http.Client
	tags map[string]string // sid tag -> backend id, from /backends
}

// launchProxy starts sioproxy on free ports (client and admin listeners) with args and waits until
// both accept connections.
func launchProxy(t *testing.T, args ...string) *proxyProc {
	t.Helper()
	px := &proxyProc{
		Proxy: testkit.StartProxy(t, testkit.ProxySpec{Admin: testkit.FreeAddr(t), Args: args}),
		http:  &http.Client{Timeout: 10 * time.Second},
	}
	t.Cleanup(px.http.CloseIdleConnections)
	return px
}

// get fetches an admin path and returns the status and body.
func (p *proxyProc) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	return p.AdminGet(t, path)
}

// post sends an admin POST and returns the status and body.
func (p *proxyProc) post(t *testing.T, path string) (int, []byte) {
	t.Helper()
	return p.AdminPost(t, path)
}

// mustPost sends an admin POST and fails unless it answers 200.
func (p *proxyProc) mustPost(t *testing.T, path string) {
	t.Helper()
	p.MustAdminPost(t, path)
}

// backendView is one backend of GET /backends.
type backendView = testkit.BackendState

// backends returns GET /backends, by backend id.
func (p *proxyProc) backends(t *testing.T) []backendView {
	t.Helper()
	m := p.Backends(t)
	out := make([]backendView, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// states maps backend id to state in GET /backends.
func (p *proxyProc) states(t *testing.T) map[string]string {
	t.Helper()
	return p.States(t)
}

// waitStates waits until /backends shows exactly the wanted states and returns the time it took.
// It also learns the sid tags of the backends.
func (p *proxyProc) waitStates(t *testing.T, want map[string]string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got map[string]string
	if !testkit.WaitFor(timeout, func() bool { got = p.states(t); return mapsEqual(got, want) }) {
		t.Fatalf("/backends shows %v after %v, want %v", got, timeout, want)
	}
	d := time.Since(start)
	p.learnTags(t)
	return d
}

// learnTags records the sid tag of every backend that has one.
func (p *proxyProc) learnTags(t *testing.T) {
	t.Helper()
	tags := map[string]string{}
	for _, b := range p.backends(t) {
		if b.Tag == "" {
			t.Fatalf("backend %s has no sid tag in /backends", b.ID)
		}
		tags[b.Tag] = b.ID
	}
	p.tags = tags
}

func mapsEqual[V comparable](a, b map[string]V) bool {
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

// pause is the polling period of the tests' waits on HTTP state (there is no event to wait on).
func pause() { time.Sleep(testkit.PollInterval) }

// metrics fetches and parses GET /metrics.
func (p *proxyProc) metrics(t *testing.T) testkit.Metrics {
	t.Helper()
	return p.Metrics(t)
}

// sessions returns GET /sessions?backend=id ("" = all).
func (p *proxyProc) sessions(t *testing.T, id string) int {
	t.Helper()
	code, body := p.get(t, "/sessions?backend="+id)
	if code != http.StatusOK {
		t.Fatalf("GET /sessions?backend=%s: %d %s", id, code, body)
	}
	var v struct {
		Sessions int `json:"sessions"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET /sessions: %v: %s", err, body)
	}
	return v.Sessions
}

// handshake opens an Engine.IO v4 polling session through the proxy, closes it again (close
// packet), and returns the backend that took it, known from the sid tag.
func (p *proxyProc) handshake() (string, error) {
	resp, err := p.http.Get(p.URL() + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || len(body) < 2 || body[0] != '0' {
		return "", fmt.Errorf("handshake: %d %q", resp.StatusCode, testkit.RedactSIDs(string(body)))
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(body[1:], &open); err != nil {
		return "", fmt.Errorf("handshake: %v: %q", err, testkit.RedactSIDs(string(body)))
	}
	id, ok := p.tags[open.SID[:min(3, len(open.SID))]]
	if !ok {
		return "", fmt.Errorf("handshake: sid_hash %s (tag %q) carries no known backend tag (tags %v)", proxy.SIDHash(open.SID), open.SID[:min(3, len(open.SID))], p.tags)
	}
	resp, err = p.http.Post(p.URL()+"/socket.io/?EIO=4&transport=polling&sid="+open.SID,
		"text/plain;charset=UTF-8", bytes.NewReader([]byte("1")))
	if err != nil {
		return id, fmt.Errorf("close: %w", testkit.RedactURLError(err))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return id, fmt.Errorf("close of sid_hash %s on %s: %d", proxy.SIDHash(open.SID), id, resp.StatusCode)
	}
	return id, nil
}

// handshakes sends n sequential probe handshakes and returns the backend of each.
func (p *proxyProc) handshakes(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		id, err := p.handshake()
		if err != nil {
			t.Fatalf("probe handshake %d: %v", i, err)
		}
		out[i] = id
	}
	return out
}

// observation is one look at the proxy: the victim's state in /backends and where a probe
// handshake sent right after landed.
type observation struct {
	at      time.Time // when /backends was read
	state   string    // the victim's state ("" = not listed)
	probeAt time.Time // when the probe handshake was sent
	backend string    // the probe's backend ("" on error)
	err     error
}

// observe looks at the proxy every 25 ms until done says so or timeout passes.
func (p *proxyProc) observe(t *testing.T, victim string, timeout time.Duration, done func([]observation) bool) []observation {
	t.Helper()
	var obs []observation
	start := time.Now()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < timeout {
		o := observation{at: time.Now(), state: p.states(t)[victim]}
		o.probeAt = time.Now()
		o.backend, o.err = p.handshake()
		obs = append(obs, o)
		if done(obs) {
			break
		}
		<-tick.C
	}
	return obs
}

// firstState is the time of the first observation showing state (zero if none).
func firstState(obs []observation, state string) time.Time {
	for _, o := range obs {
		if o.state == state {
			return o.at
		}
	}
	return time.Time{}
}

// avoidingSince is the time of the first probe from which every probe landed elsewhere than
// victim (zero when the last probe landed on it or failed).
func avoidingSince(obs []observation, victim string) time.Time {
	k := len(obs)
	for k > 0 && obs[k-1].err == nil && obs[k-1].backend != victim {
		k--
	}
	if k == len(obs) {
		return time.Time{}
	}
	return obs[k].probeAt
}

// firstOn is the time of the first probe that landed on victim (zero if none).
func firstOn(obs []observation, victim string) time.Time {
	for _, o := range obs {
		if o.err == nil && o.backend == victim {
			return o.probeAt
		}
	}
	return time.Time{}
}

// countOn counts the probes per backend ("error" for failed ones).
func countOn(obs []observation) map[string]int {
	m := map[string]int{}
	for _, o := range obs {
		if o.err != nil {
			m["error"]++
			continue
		}
		m[o.backend]++
	}
	return m
}

// since is d = t1 - t0 rounded for logs; a zero t1 gives -1.
func since(t0, t1 time.Time) time.Duration {
	if t1.IsZero() {
		return -1
	}
	return t1.Sub(t0).Round(time.Millisecond)
}
