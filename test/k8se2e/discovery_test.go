package k8se2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"sioproxy/health/kubetest"
	"sioproxy/test/testkit"
)

const ns = "sio"

// Budgets: a slice change reaches routing within changeBudget (the 2 s); the API
// server's outage is seen within outageBudget.
const (
	changeBudget = 2 * time.Second
	outageBudget = 10 * time.Second
	// The reflector retries the API server with a backoff that can reach 30 s (x2 jitter).
	backBudget = 70 * time.Second
)

// backendView is one backend of GET /backends.
type backendView struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	State    string `json:"state"`
	Sessions int64  `json:"sessions"`
	Tunnels  int64  `json:"tunnels"`
	Tag      string `json:"tag"`
	Source   string `json:"source"`
	Zone     string `json:"zone"`
}

// admin is the admin API of a running proxy.
type admin struct {
	px *testkit.Proxy
	hc *http.Client
}

func (a admin) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := a.hc.Get(a.px.AdminURL(path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

func (a admin) backends(t *testing.T) map[string]backendView {
	t.Helper()
	code, body := a.get(t, "/backends")
	if code != http.StatusOK {
		t.Fatalf("GET /backends: %d %s", code, body)
	}
	var list []backendView
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /backends: %v", err)
	}
	out := map[string]backendView{}
	for _, b := range list {
		out[b.ID] = b
	}
	return out
}

// states renders /backends as "id=state" sorted by id.
func (a admin) states(t *testing.T) string {
	t.Helper()
	bs := a.backends(t)
	var ids []string
	for id := range bs {
		ids = append(ids, id)
	}
	sortStrings(ids)
	var sb strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&sb, "%s=%s ", id, bs[id].State)
	}
	return sb.String()
}

// waitStates waits until /backends renders as want and returns how long that took since start.
func (a admin) waitStates(t *testing.T, start time.Time, budget time.Duration, want string) time.Duration {
	t.Helper()
	var got string
	if !testkit.WaitFor(budget-time.Since(start), func() bool { got = a.states(t); return got == want }) {
		t.Fatalf("/backends %q %v after the change, want %q", got, time.Since(start), want)
	}
	return time.Since(start)
}

// metric returns the value of an unlabelled sample in /metrics.
func (a admin) metric(t *testing.T, name string) (float64, bool) {
	t.Helper()
	_, body := a.get(t, "/metrics")
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// freePortAll is a TCP port free on every address of the namespace (the pods of one slice
// share a port).
func freePortAll(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs clients.js to completion (3 emits a session, 20 at once) and requires every session ok.
func run(t *testing.T, url, mode string, n int) map[string]int {
	t.Helper()
	s := testkit.RunClients(t, testkit.ClientOpts{URL: url, Mode: mode, N: n, Emits: 3, Concurrency: 20})
	if s.OK != n || s.Failed != 0 {
		for _, ss := range s.Sessions {
			if !ss.OK {
				t.Logf("%s session %d: backends %v, errors %q", mode, ss.ID, ss.Backends, ss.Errors)
			}
		}
		t.Fatalf("clients.js %s: %d ok, %d failed of %d", mode, s.OK, s.Failed, n)
	}
	return s.ByBackend
}

// TestKubernetesDiscovery runs sioproxy (-kubeconfig, -k8s-service) in front of four real
// socket.io backends whose pods the test publishes in EndpointSlices, and drives the rollout
// cases of the issue: two slices, an endpoint terminating and back, endpoints removed, the API
// server killed and restarted; it also reads a 250-endpoint service, checks that RBAC without
// watch fails the start clearly, and applies deploy/kubernetes (one API server for all: it takes
// seconds to start). It logs each slice-change-to-routing delay.
func TestKubernetesDiscovery(t *testing.T) {
	begin := time.Now()
	cl := kubetest.Start(t, kubetest.Options{Host: apiHost, Users: []string{"sioproxy", "nowatch"}})
	t.Logf("etcd and kube-apiserver ready in %v", time.Since(begin).Round(time.Millisecond))
	t.Run("deploy/kubernetes applied", func(t *testing.T) { testDeployManifests(t, cl) })
	api := cl.Client(kubetest.Admin)
	kubetest.Namespace(t, api, ns)
	kubetest.Grant(t, api, ns, "sioproxy", "list", "watch")
	kubetest.Grant(t, api, ns, "nowatch", "list")

	port := freePortAll(t)
	var bs []*testkit.Backend
	for i := 1; i <= 4; i++ {
		bs = append(bs, testkit.LaunchBackendOn(t, fmt.Sprintf("chat-%d", i), "4", podIP(i), port))
	}
	testkit.WaitReady(t, testkit.BackendReadyTimeout, bs...)
	ep := func(n int, c kubetest.Condition) discoveryv1.Endpoint {
		return kubetest.Endpoint(ns, fmt.Sprintf("chat-%d", n), podIP(n), "zone-"+string(rune('a'+n%2)), c)
	}
	sliceA := func(c2 kubetest.Condition, c1 ...kubetest.Condition) {
		first := kubetest.Ready
		if len(c1) > 0 {
			first = c1[0]
		}
		kubetest.Apply(t, api, kubetest.Slice(ns, "chat", "chat-a", "http", int32(port), ep(1, first), ep(2, c2)))
	}
	sliceA(kubetest.Ready)
	kubetest.Apply(t, api, kubetest.Slice(ns, "chat", "chat-b", "http", int32(port), ep(3, kubetest.Ready)))

	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte("discovery:\n  kubernetes:\n    services: [sio/chat]\n    grace: 2s\n"+
		"balancer:\n  slow_start: 0s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	px := testkit.StartProxy(t, testkit.ProxySpec{Admin: testkit.FreeAddr(t), Args: []string{"-config", cfg,
		"-kubeconfig", cl.Kubeconfig("sioproxy"), "-k8s-service", ns + "/chat", "-log-level", "info"}})
	a := admin{px: px, hc: &http.Client{Timeout: 10 * time.Second}}
	defer a.hc.CloseIdleConnections()
	all3 := "sio/chat-1=active sio/chat-2=active sio/chat-3=active "
	a.waitStates(t, time.Now(), 15*time.Second, all3)
	if b := a.backends(t)["sio/chat-1"]; b.Address != net.JoinHostPort(podIP(1), strconv.Itoa(port)) || b.Source != "kubernetes" ||
		b.Zone != "zone-b" || b.Tag == "" {
		t.Fatalf("backend %+v", b)
	}
	if v, ok := a.metric(t, "sioproxy_kubernetes_healthy"); !ok || v != 1 {
		t.Fatalf("sioproxy_kubernetes_healthy = %v (present %v), want 1", v, ok)
	}
	var delays []string
	note := func(what string, d time.Duration) {
		delays = append(delays, fmt.Sprintf("%-46s %v", what+":", d.Round(time.Millisecond)))
	}

	// Two slices: new sessions spread over the three ready endpoints.
	seen := run(t, px.URL(), "polling", 30)
	for k, v := range run(t, px.URL(), "upgrade", 30) {
		seen[k] += v
	}
	t.Logf("60 sessions over the two slices: %v", seen)
	for _, n := range []string{"chat-1", "chat-2", "chat-3"} {
		if seen[n] < 60/6 {
			t.Errorf("%s got %d of 60 sessions: %v", n, seen[n], seen)
		}
	}
	if seen["chat-4"] != 0 {
		t.Errorf("chat-4 is in no slice but got %d sessions", seen["chat-4"])
	}

	// chat-2 terminating (its pod in its grace period, still serving): no new session within
	// 2 s, its running sessions keep acking.
	hold := testkit.StartHold(t, testkit.ClientOpts{URL: px.URL(), Mode: "upgrade", N: 12, Emits: 3, Concurrency: 12})
	hold.WaitProgress(t, "all_acked", 30*time.Second)
	if n := a.backends(t)["sio/chat-2"].Sessions; n == 0 {
		t.Fatalf("no held session on chat-2 (p2c spread 12 sessions elsewhere?)")
	}
	start := time.Now()
	changed := testkit.NowMs()
	sliceA(kubetest.Terminating)
	note("terminating -> draining in /backends", a.waitStates(t, start, changeBudget,
		"sio/chat-1=active sio/chat-2=draining sio/chat-3=active "))
	if got := run(t, px.URL(), "polling", 20); got["chat-2"] != 0 {
		t.Errorf("terminating chat-2 got %d new sessions: %v", got["chat-2"], got)
	}
	if d := hold.WaitAckedAfter(t, changed, 15*time.Second); d > 0 {
		t.Logf("every held session (chat-2's too) acked %v after the change", d)
	}
	// It returns.
	start = time.Now()
	sliceA(kubetest.Ready)
	note("ready again -> active", a.waitStates(t, start, changeBudget, all3))
	if got := run(t, px.URL(), "polling", 30); got["chat-2"] == 0 {
		t.Errorf("chat-2 ready again but got no new session: %v", got)
	}
	sum := hold.Stop(t)
	for _, s := range sum.Sessions {
		if !s.OK || len(s.Backends) != 1 || len(s.Reconnects) > 0 || len(s.Disconnects) > 0 {
			t.Errorf("held session %d: ok %v, backends %v, disconnects %v, errors %q", s.ID, s.OK, s.Backends, s.Disconnects, s.Errors)
		}
	}

	// Endpoints removed: chat-3's slice now lists chat-4 instead. chat-3 drains for the 2 s
	// grace, then is gone.
	start = time.Now()
	kubetest.Apply(t, api, kubetest.Slice(ns, "chat", "chat-b", "http", int32(port), ep(4, kubetest.Ready)))
	note("removed -> draining, added -> active", a.waitStates(t, start, changeBudget,
		"sio/chat-1=active sio/chat-2=active sio/chat-3=draining sio/chat-4=active "))
	all := "sio/chat-1=active sio/chat-2=active sio/chat-4=active "
	note("removed -> gone (2 s grace)", a.waitStates(t, start, changeBudget+3*time.Second, all))
	if got := run(t, px.URL(), "polling", 30); got["chat-3"] != 0 || got["chat-4"] == 0 {
		t.Errorf("after chat-3 left and chat-4 came: %v", got)
	}
	// A whole slice deleted.
	start = time.Now()
	kubetest.Delete(t, api, ns, "chat-b")
	note("slice deleted -> draining", a.waitStates(t, start, changeBudget, "sio/chat-1=active sio/chat-2=active sio/chat-4=draining "))
	kubetest.Apply(t, api, kubetest.Slice(ns, "chat", "chat-b", "http", int32(port), ep(4, kubetest.Ready)))
	a.waitStates(t, time.Now(), changeBudget, all)

	// The API server crashes: the last set is kept, new sessions are still placed, the gauge
	// says so, /readyz stays 200.
	start = time.Now()
	cl.KillAPIServer()
	if !testkit.WaitFor(outageBudget, func() bool { v, _ := a.metric(t, "sioproxy_kubernetes_healthy"); return v == 0 }) {
		t.Fatalf("sioproxy_kubernetes_healthy still 1 %v after the API server was killed", outageBudget)
	}
	note("API server killed -> healthy 0", time.Since(start))
	if got := a.states(t); got != all {
		t.Fatalf("/backends with the API server down: %q, want %q", got, all)
	}
	down := run(t, px.URL(), "polling", 20)
	if down["chat-1"]+down["chat-2"]+down["chat-4"] != 20 {
		t.Errorf("sessions with the API server down: %v", down)
	}
	if code, body := a.get(t, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with the API server down: %d %s", code, body)
	}
	// It comes back: healthy again, and changes flow again.
	start = time.Now()
	cl.StartAPIServer()
	own := time.Since(start)
	if !testkit.WaitFor(backBudget, func() bool { v, _ := a.metric(t, "sioproxy_kubernetes_healthy"); return v == 1 }) {
		t.Fatalf("sioproxy_kubernetes_healthy still 0 %v after the API server restarted", backBudget)
	}
	note(fmt.Sprintf("API server restarted (own start %v) -> healthy 1", own.Round(time.Millisecond)), time.Since(start))
	start = time.Now()
	sliceA(kubetest.Ready, kubetest.Terminating)
	note("after the restart: terminating -> draining", a.waitStates(t, start, changeBudget,
		"sio/chat-1=draining sio/chat-2=active sio/chat-4=active "))

	t.Run("zone preference", func(t *testing.T) {
		sliceA(kubetest.Ready)
		a.waitStates(t, time.Now(), changeBudget, all)
		// A proxy in zone-b that prefers it: chat-1 is the only ready pod there.
		zcfg := filepath.Join(t.TempDir(), "zone.yaml")
		if err := os.WriteFile(zcfg, []byte("discovery:\n  kubernetes:\n    prefer_zone: true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		zp := testkit.StartProxy(t, testkit.ProxySpec{Name: "sioproxy-zone", Admin: testkit.FreeAddr(t), Args: []string{
			"-config", zcfg, "-kubeconfig", cl.Kubeconfig("sioproxy"), "-k8s-service", ns + "/chat", "-k8s-zone", "zone-b"}})
		za := admin{px: zp, hc: a.hc}
		za.waitStates(t, time.Now(), 15*time.Second, all)
		// Another process, the same ids and sid tags (namespace/pod): either routes the other's sessions.
		for id, b := range a.backends(t) {
			if zb := za.backends(t)[id]; zb.Tag != b.Tag || b.Tag == "" {
				t.Errorf("%s: tag %q in one proxy, %q in the other", id, b.Tag, zb.Tag)
			}
		}
		if got := run(t, zp.URL(), "polling", 20); got["chat-1"] != 20 {
			t.Errorf("a proxy preferring zone-b placed sessions %v, want all 20 on chat-1 (zone-b)", got)
		}
	})

	t.Run("250 endpoints in three slices", func(t *testing.T) {
		for s := range 3 {
			var eps []discoveryv1.Endpoint
			for i := s * 100; i < min(250, (s+1)*100); i++ {
				eps = append(eps, kubetest.Endpoint(ns, fmt.Sprintf("big-%03d", i), fmt.Sprintf("10.214.%d.%d", i/200, i%200+1), "", kubetest.Ready))
			}
			kubetest.Apply(t, api, kubetest.Slice(ns, "big", fmt.Sprintf("big-%d", s), "", 4000, eps...))
		}
		// A proxy of its own, that no client uses: nothing listens on these addresses.
		start := time.Now()
		big := testkit.StartProxy(t, testkit.ProxySpec{Name: "sioproxy-big", Admin: testkit.FreeAddr(t), Args: []string{
			"-kubeconfig", cl.Kubeconfig("sioproxy"), "-k8s-service", ns + "/big"}})
		ba := admin{px: big, hc: a.hc}
		var n int
		if !testkit.WaitFor(15*time.Second, func() bool { n = len(ba.backends(t)); return n == 250 }) {
			t.Fatalf("/backends lists %d of 250 endpoints", n)
		}
		t.Logf("250 endpoints listed %v after the proxy started", time.Since(start).Round(time.Millisecond))
		if b := ba.backends(t)["sio/big-249"]; b.Address != "10.214.1.50:4000" || b.State != "active" {
			t.Errorf("big-249: %+v", b)
		}
	})

	t.Run("RBAC without watch", func(t *testing.T) {
		p := testkit.LaunchProxy(t, testkit.ProxySpec{Name: "sioproxy-nowatch", Args: []string{
			"-kubeconfig", cl.Kubeconfig("nowatch"), "-k8s-service", ns + "/chat"}})
		select {
		case <-p.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("sioproxy with an identity that may not watch is still running after 30 s")
		}
		out := strings.Join(p.Texts(0), "\n")
		if p.Err() == nil || !strings.Contains(out, `not allowed to watch endpointslices.discovery.k8s.io in namespace "sio"`) {
			t.Fatalf("exit %v, output:\n%s", p.Err(), out)
		}
		t.Logf("start refused: %s", lastLine(out))
	})

	for _, d := range delays {
		t.Log(d)
	}
	t.Logf("whole test: %v", time.Since(begin).Round(time.Millisecond))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
