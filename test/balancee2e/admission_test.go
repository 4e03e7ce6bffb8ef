package balancee2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// TestAdmissionStorm: admission {rate: 20, burst: 20} per backend, 3 backends, and 300 clients
// handshaking at once. The first ~60 handshakes pass, the others get 503 with Retry-After and
// socket.io-client retries them with its backoff; every client ends up connected, and no backend
// ever takes handshakes faster than its bucket allows: in any interval of length T it gets at most
// burst + rate × T new sessions. That is checked on the backends' own "connection" lines,
// timestamped as they are read, with a slack of 8 for that timing (the single-threaded backend
// may log a few handshakes late and then together: 22.8 seen on a loaded machine); without admission
// the excess would be ~80, at twice the rate ~60.
func TestAdmissionStorm(t *testing.T) {
	const rate, burst, n, slack = 20.0, 20, 300, 8
	bs := startBackends(t, 3)
	px := startProxy(t, bs, nil, fmt.Sprintf("policy: p2c\nadmission: {rate: %g, burst: %d}", rate, burst), "")
	start := time.Now()
	s := startSessions(t, sessionOpts{URL: px.URL(), N: n, Hold: true, Concurrency: n})
	c := s.waitConnected(t, 90*time.Second)
	allIn := time.Duration(c.At-start.UnixMilli()) * time.Millisecond
	rejected := px.metric(t, "sioproxy_requests_total", `kind="handshake"`, `code="5xx"`)
	sum := s.stop(t)

	retryAfter := map[string]int{} // Retry-After value of the 503s the clients saw
	refused, clientsRefused := 0, 0
	for _, cl := range sum.Clients {
		if len(cl.Placements) != 1 {
			t.Errorf("client %d never connected: %v %v", cl.ID, cl.ConnectErrors, cl.Errors)
		}
		got := 0
		for _, e := range cl.ConnectErrors {
			if e.Status == 503 {
				got++
				ra := "(none)"
				if e.RetryAfter != nil {
					ra = *e.RetryAfter
				}
				retryAfter[ra]++
			} else {
				t.Errorf("client %d: connect error other than 503: %+v", cl.ID, e)
			}
		}
		refused += got
		if got > 0 {
			clientsRefused++
		}
	}
	t.Logf("admission storm: %d clients at once; %d handshakes refused with 503 (%d clients, Retry-After values %v; proxy metric %g); all connected after %v; placed %s",
		n, refused, clientsRefused, retryAfter, rejected, allIn.Round(time.Millisecond), shares(testkit.BackendNames(bs), c.ByBackend))
	if refused == 0 {
		t.Error("no handshake was refused: admission did not engage")
	}
	if float64(refused) > rejected {
		t.Errorf("clients saw %d 503s, the proxy counted %g 5xx handshakes", refused, rejected)
	}
	if retryAfter["(none)"] > 0 || len(retryAfter) == 0 {
		t.Errorf("503s without Retry-After: %v", retryAfter)
	}
	for _, b := range bs {
		times := connectionTimes(b)
		excess, peak := rateExcess(times, rate)
		var span time.Duration
		if len(times) > 1 {
			span = times[len(times)-1].Sub(times[0])
		}
		t.Logf("%s: %d handshakes over %v; at most %d in any 1 s; largest burst above the rate %.1f (allowed %d)",
			b.Name, len(times), span.Round(time.Millisecond), peak, excess, burst)
		if excess > burst+slack {
			t.Errorf("%s took handshakes beyond its bucket: %.1f above rate × time, burst is %d\n%s", b.Name, excess, burst, timeline(times))
		}
	}
}

// rateExcess returns the largest (count − rate × duration) over all intervals [t_i, t_j] of the
// sorted instants, i.e. the burst a token bucket of that rate needs to admit them, and the largest
// count within any one second.
func rateExcess(times []time.Time, rate float64) (excess float64, perSecond int) {
	times = slices.Clone(times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := range times {
		for j := i; j < len(times); j++ {
			d := times[j].Sub(times[i])
			excess = max(excess, float64(j-i+1)-rate*d.Seconds())
			if d < time.Second {
				perSecond = max(perSecond, j-i+1)
			}
		}
	}
	return excess, perSecond
}

// timeline formats instants as offsets from the first, for failure messages.
func timeline(times []time.Time) string {
	var b strings.Builder
	for _, x := range times {
		fmt.Fprintf(&b, "%dms ", x.Sub(times[0]).Milliseconds())
	}
	return b.String()
}
