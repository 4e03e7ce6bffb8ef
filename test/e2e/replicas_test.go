package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

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
