package balancee2e

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/test/testkit"
)

// TestHashNAT: 300 sessions from one client IP (a NAT, no X-Forwarded-For) on "hash" by client
// IP. nginx's ip_hash would put all of them on one backend; bounded loads cap every backend at
// ceil((1+ε) × mean), so the key's first choice fills to the cap, then its second choice, then
// the rest goes to the third: shares (1+ε)/3, (1+ε)/3, 1-2(1+ε)/3. With ε = 0.1 every backend
// gets >= 25% (26.7% for the last); with the default ε = 0.25 the last gets only ~16.7%.
func TestHashNAT(t *testing.T) {
	for _, tc := range []struct {
		eps      float64
		minShare float64 // percent every backend must get
	}{
		{eps: 0.1, minShare: 25},
		{eps: 0.25, minShare: 15},
	} {
		t.Run(fmt.Sprintf("epsilon=%g", tc.eps), func(t *testing.T) {
			bs := startBackends(t, 3)
			px := startProxy(t, bs, nil, fmt.Sprintf("policy: hash\nhash_key: {source: ip}\nepsilon: %g", tc.eps), "")
			const n = 300
			s := startSessions(t, sessionOpts{URL: px.URL(), N: n, Hold: true, Concurrency: n})
			c := s.waitConnected(t, 90*time.Second)
			views := px.backends(t)
			s.stop(t)
			t.Logf("hash ip, one client IP, epsilon %g: %s", tc.eps, shares(testkit.BackendNames(bs), c.ByBackend))
			// The bound, as the balancer applies it at the last placement: load (sessions + tunnels,
			// 2 per upgraded session) below (1+ε) × (total+1)/3.
			var total int64
			for _, v := range views {
				total += v.Sessions + v.Tunnels
			}
			limit := math.Ceil((1 + tc.eps) * float64(total+1) / 3)
			for _, b := range bs {
				if got := pct(c.ByBackend[b.Name], n); got < tc.minShare {
					t.Errorf("%s got %.1f%% of the sessions, want >= %.0f%%", b.Name, got, tc.minShare)
				}
				if l := views[b.Name].Sessions + views[b.Name].Tunnels; float64(l) > limit+2 {
					t.Errorf("%s has load %d, above the bound ceil((1+%g) × mean) = %.0f", b.Name, l, tc.eps, limit)
				}
			}
		})
	}
}

// TestHashXFFAffinity: behind a trusted proxy (127.0.0.0/8), "hash" on the client IP takes the
// rightmost untrusted X-Forwarded-For entry. 150 background sessions (distinct IPs) load the
// backends so that the bound leaves room; then 50 client IPs each connect and reconnect 3 times.
// A reconnect must land where that IP's first session landed (>= 95%), which must be the IP's
// rendezvous-hash first choice as the balancer package computes it, and the spread stays within
// the bound.
func TestHashXFFAffinity(t *testing.T) {
	bs := startBackends(t, 3)
	px := startProxy(t, bs, nil, "policy: hash\nhash_key: {source: ip}", "proxy:\n  trusted_proxies: [\"127.0.0.0/8\"]\n")
	bg := startSessions(t, sessionOpts{URL: px.URL(), N: 150, Hold: true, XFF: ips(1, 150), Concurrency: 150})
	bgc := bg.waitConnected(t, 60*time.Second)
	t.Logf("background: %s", shares(testkit.BackendNames(bs), bgc.ByBackend))

	const nIP, rounds = 50, 4
	clientIPs := ips(2, nIP)
	// Clients that already passed through another proxy: the client IP is the rightmost untrusted
	// entry, so a spoofed leftmost entry must not matter.
	xff := make([]string, nIP)
	for i, ip := range clientIPs {
		xff[i] = fmt.Sprintf("203.0.113.%d, %s, 127.0.0.2", i%250+1, ip)
	}
	run := startSessions(t, sessionOpts{URL: px.URL(), N: nIP, Rounds: rounds, XFF: xff, Concurrency: nIP})
	sum := run.stop(t)
	views := px.backends(t)
	bg.stop(t)

	want := rendezvous(t, testkit.BackendNames(bs), clientIPs, "")
	same, reconnects, predicted := 0, 0, 0
	perBackend := map[string]int{}
	for _, c := range sum.Clients {
		if len(c.Placements) != rounds {
			t.Fatalf("client %d (%s): %d placements, want %d; errors %v", c.ID, clientIPs[c.ID], len(c.Placements), rounds, c.Errors)
		}
		first := c.Placements[0].Backend
		perBackend[first]++
		if first == want[c.ID] {
			predicted++
		}
		for _, p := range c.Placements[1:] {
			reconnects++
			if p.Backend == first {
				same++
			}
		}
	}
	t.Logf("hash ip via X-Forwarded-For: %d of %d reconnects (%.1f%%) on the first session's backend; %d of %d IPs (%.1f%%) on their rendezvous first choice; IPs per backend: %s",
		same, reconnects, pct(same, reconnects), predicted, nIP, pct(predicted, nIP), shares(testkit.BackendNames(bs), perBackend))
	if pct(same, reconnects) < 95 {
		t.Errorf("only %.1f%% of reconnects on the same backend, want >= 95%%", pct(same, reconnects))
	}
	if pct(predicted, nIP) < 95 {
		t.Errorf("only %.1f%% of client IPs on their rendezvous first choice, want >= 95%% (is X-Forwarded-For used?)", pct(predicted, nIP))
	}
	var total int64
	for _, v := range views {
		total += v.Sessions + v.Tunnels
	}
	limit := math.Ceil((1 + configs.Default().Balancer.Epsilon) * float64(total+1) / 3)
	for _, b := range bs {
		if l := views[b.Name].Sessions + views[b.Name].Tunnels; float64(l) > limit {
			t.Errorf("%s has load %d, above the bound %.0f", b.Name, l, limit)
		}
	}
}

// rendezvous returns, for each client IP, the backend "hash" prefers for it when every backend
// has room and the backend exclude ("" = none) is gone: the balancer package's own placement on an
// idle snapshot with the same backend IDs.
func rendezvous(t *testing.T, ids []string, clientIPs []string, exclude string) []string {
	t.Helper()
	bal := balancer.New(balancer.NewHash(configs.Default().Balancer.Epsilon))
	specs := make([]balancer.Spec, len(ids))
	for i, id := range ids {
		specs[i] = balancer.Spec{ID: id, Weight: 1}
	}
	bal.Update(specs)
	var ex []*balancer.Backend
	if exclude != "" {
		ex = append(ex, bal.Snapshot().ByID(exclude))
	}
	out := make([]string, len(clientIPs))
	for i, s := range clientIPs {
		a := netip.MustParseAddr(s).As16() // the proxy hashes the 16-byte form (keys.go)
		be := bal.Place(&balancer.Pick{Key: balancer.HashKey(a[:]), HasKey: true, Exclude: ex})
		if be == nil {
			t.Fatal("rendezvous: no backend")
		}
		out[i] = be.ID
	}
	return out
}
