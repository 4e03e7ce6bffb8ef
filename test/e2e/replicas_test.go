package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"sioproxy/sticky"
	"sioproxy/test/testkit"
)

// roundRobinFront is an L7 round robin in front of sioproxy replicas: every request (WebSocket
// upgrades included) goes to the next replica, so the requests of one session alternate between them.
type roundRobinFront struct {
	srv  *httptest.Server
	next atomic.Uint64
	hits []atomic.Int64
}

func startRoundRobinFront(t *testing.T, replicas []string) *roundRobinFront {
	t.Helper()
	targets := make([]*url.URL, len(replicas))
	for i, r := range replicas {
		u, err := url.Parse(r)
		if err != nil {
			t.Fatalf("replica %q: %v", r, err)
		}
		targets[i] = u
	}
	f := &roundRobinFront{hits: make([]atomic.Int64, len(replicas))}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i := int((f.next.Add(1) - 1) % uint64(len(targets)))
			f.hits[i].Add(1)
			r.SetURL(targets[i])
			r.SetXForwarded()
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     30 * time.Second,
		},
		FlushInterval: -1,
	}
	f.srv = httptest.NewServer(rp)
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

// TestReplicasBehindRoundRobin puts two sioproxy processes in front of the same three backends and a
// per-request round robin in front of them: with tagged sids either replica routes every request of a
// session to its owner, so polling and upgrading sessions all succeed.
func TestReplicasBehindRoundRobin(t *testing.T) {
	bs := testkit.StartBackends(t, 3, "r%d", "4")
	pa := startProxy(t, "sioproxy replica A", "", testkit.BackendURLs(bs))
	pb := startProxy(t, "sioproxy replica B", "", testkit.BackendURLs(bs))
	front := startRoundRobinFront(t, []string{pa.URL(), pb.URL()})

	for _, m := range []struct{ mode, end string }{{"polling", "polling"}, {"upgrade", "websocket"}} {
		t.Run(m.mode, func(t *testing.T) {
			before := [2]int64{front.hits[0].Load(), front.hits[1].Load()}
			start := time.Now()
			sum := testkit.RunClients(t, testkit.ClientOpts{URL: front.srv.URL, Mode: m.mode, Version: "4", N: 100, Emits: 5})
			a, b := front.hits[0].Load()-before[0], front.hits[1].Load()-before[1]
			t.Logf("%d sessions in %v; requests via replica A %d, B %d; by backend %v", len(sum.Sessions), time.Since(start).Round(time.Millisecond), a, b, sum.ByBackend)
			assertSessions(t, sum, 100, m.mode, m.end, bs, 0.15)
			// The front must really have split each session's requests between the replicas.
			if total := a + b; a*10 < total*4 || b*10 < total*4 {
				t.Errorf("front sent %d requests to A and %d to B: not a round robin", a, b)
			}
		})
	}
	assertNoUnknownSID(t, bs)
}

// TestReplicaCountsReturnToZero: real sessions whose requests alternate between two replicas count
// on each replica that saw them answered, and every count returns to exactly 0 once the sessions
// ended (the replica that saw the close or the tunnel end forgets at once, the other after the
// session's ping interval + timeout + margin). A forged sid, meanwhile, counts nowhere.
func TestReplicaCountsReturnToZero(t *testing.T) {
	var bs []*testkit.Backend
	for i := 1; i <= 2; i++ {
		bs = append(bs, testkit.LaunchBackend(t, fmt.Sprintf("z%d", i), "4", "--ping-interval", "4000", "--ping-timeout", "3000"))
	}
	testkit.WaitReady(t, testkit.BackendReadyTimeout, bs...)
	cfg := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(cfg, []byte("sticky:\n  session_ttl: 2s\n  ttl_margin: 1s\nlog:\n  level: info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-config", cfg}
	for _, b := range bs {
		args = append(args, "-backend", b.URL())
	}
	pa := testkit.StartProxy(t, testkit.ProxySpec{Name: "replica A", Admin: testkit.FreeAddr(t), Args: args})
	pb := testkit.StartProxy(t, testkit.ProxySpec{Name: "replica B", Admin: testkit.FreeAddr(t), Args: args})
	front := startRoundRobinFront(t, []string{pa.URL(), pb.URL()})

	for _, mode := range []string{"polling", "upgrade", "websocket"} {
		sum := testkit.RunClients(t, testkit.ClientOpts{URL: front.srv.URL, Mode: mode, Version: "4", N: 40, Emits: 3})
		if sum.OK != 40 {
			t.Fatalf("%s: %d of 40 sessions ok", mode, sum.OK)
		}
	}
	// A forged sid with a real tag: routed by it, answered "Session ID unknown", counted nowhere.
	views := backendViews(t, pa)
	for i := 0; i < 50; i++ {
		sid := sticky.AppendTagged(nil, views[i%2].Tag, []byte(fmt.Sprintf("forged%014d", i)))
		u := front.srv.URL + "/socket.io/?EIO=4&transport=polling&sid=" + string(sid)
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
		}
	}
	zero := func(p *testkit.Proxy) bool {
		for _, v := range backendViews(t, p) {
			if v.Sessions != 0 || v.Tunnels != 0 {
				return false
			}
		}
		return true
	}
	if !testkit.WaitFor(30*time.Second, func() bool { return zero(pa) && zero(pb) }) {
		t.Fatalf("counts after every session ended: replica A %+v, replica B %+v; want all 0", backendViews(t, pa), backendViews(t, pb))
	}
}

type countView struct {
	ID       string `json:"id"`
	Tag      string `json:"tag"`
	Sessions int64  `json:"sessions"`
	Tunnels  int64  `json:"tunnels"`
}

func backendViews(t *testing.T, p *testkit.Proxy) []countView {
	t.Helper()
	resp, err := http.Get(p.AdminURL("/backends"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vs []countView
	if err := json.NewDecoder(resp.Body).Decode(&vs); err != nil {
		t.Fatal(err)
	}
	return vs
}
