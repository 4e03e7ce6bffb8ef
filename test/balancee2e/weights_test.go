package balancee2e

import (
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// TestWeights: weights 1, 1, 2; the heavy backend gets 50% ± 10 points of 300 held sessions (and
// each light one 25% ± 10) with p2c (which balances live load per unit of weight) and
// round_robin (smooth weighted: b3 b1 b3 b2 ...).
func TestWeights(t *testing.T) {
	for _, policy := range []string{"p2c", "round_robin"} {
		t.Run(policy, func(t *testing.T) {
			bs := startBackends(t, 3)
			px := startProxy(t, bs, []int{1, 1, 2}, "policy: "+policy, "")
			const n = 300
			s := startSessions(t, sessionOpts{URL: px.URL(), N: n, Hold: true, Concurrency: n})
			c := s.waitConnected(t, 90*time.Second)
			s.stop(t)
			t.Logf("%s, weights 1,1,2: %s", policy, shares(testkit.BackendNames(bs), c.ByBackend))
			for i, want := range []float64{25, 25, 50} {
				if got := pct(c.ByBackend[bs[i].Name], n); got < want-10 || got > want+10 {
					t.Errorf("%s (weight %d) got %.1f%%, want %.0f%% ± 10", bs[i].Name, []int{1, 1, 2}[i], got, want)
				}
			}
		})
	}
}
