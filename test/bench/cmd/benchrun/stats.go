package main

import (
	"math"
	"slices"
)

// median of xs (NaN for none); NaN values are ignored.
func median(xs []float64) float64 {
	v := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// memAt is the resident memory per session at the ladder step holding the most sessions <= n
// (the first step when all are larger); NaN without steps.
func memAt(steps []holdStep, n int) float64 {
	if len(steps) == 0 {
		return math.NaN()
	}
	best := 0
	for i, s := range steps {
		if s.Sessions <= n {
			best = i
		}
	}
	return steps[best].PerSessionKB()
}

// peerSummary is the medians over repetitions for one peer.
type peerSummary struct {
	Name          string
	PollCPUPer10k float64
	WSCPUPer10k   float64
	MemPerSession float64 // KB per held idle WebSocket session, at the 2,000 step
	Handshakes    float64
	MaxHeld       int
	MaxHeldKB     float64
	Lat           []latPoint // medians per rate
	Saturation    float64    // highest median acked emits/s over the rates
	Saturated     bool       // false: even the highest offered rate was fully acked (saturation is above it)
	SlopeKB       float64    // KB per session between the first and last hold ladder steps
	HalfRate      int        // the highest offered rate <= Saturation/2
	AddedP50      float64    // ms over direct at HalfRate
	AddedP99      float64
	HoldCurve     []holdStep // median RSS per ladder step (Sessions = target)
	Errors        int64
	AddedP999     float64
	// socket.io-client workload: proxy CPU seconds, medians.
	NodePollCPU, NodeWSCPU, NodeCPU float64
	NodeErrors                      int
	Tail                            tailSummary
	Scale                           []scaleStep
}

// tailSummary adds up the tail runs of every repetition through one path.
type tailSummary struct {
	Runs, Sessions, Failed, Slow int
	SlowRaced                    int       // slow with the CONNECT ack before the POST's ok: the upgrade race
	SlowMs                       []float64 // every slow first ack, ms
	GetFirst, Ordered            int       // at the backend: first GET before the CONNECT POST, of sessions seen
	ConnectBeforeDrain           int       // at the client: CONNECT ack before the POST's ok
	P50, P99                     float64   // medians over the runs
}

// summarize computes every peer's medians; direct is the baseline for added latency.
func summarize(b *bench) (map[string]*peerSummary, *peerSummary) {
	out := map[string]*peerSummary{}
	names := []string{"direct"}
	for _, p := range b.peers {
		names = append(names, p.Name)
	}
	for _, name := range names {
		s := &peerSummary{Name: name}
		var poll, ws, mem, hs, npoll, nws, ntot, tp50, tp99 []float64
		lat := map[int][][4]float64{}
		hold := map[int][]float64{}
		for _, rep := range b.reps {
			r := rep[name]
			if r == nil {
				continue
			}
			poll = append(poll, r.PollCPUPer10k)
			ws = append(ws, r.WSCPUPer10k)
			mem = append(mem, memAt(r.Hold, 2000))
			hs = append(hs, r.Handshakes)
			s.Errors += r.PollErrors + r.WSErrors
			for _, pt := range r.Lat {
				lat[pt.Rate] = append(lat[pt.Rate], [4]float64{pt.Achieved, pt.P50, pt.P99, pt.P999})
			}
			if w := r.Node; w != nil {
				npoll, nws, ntot = append(npoll, w.PollCPU), append(nws, w.WSCPU), append(ntot, w.PollCPU+w.WSCPU)
				s.NodeErrors += w.Errors
			}
			if t := r.Tail; t != nil {
				s.Tail.Runs++
				s.Tail.Sessions += t.N
				s.Tail.Failed += t.Failed
				s.Tail.Slow += t.Slow
				s.Tail.SlowRaced += t.SlowRaced
				s.Tail.SlowMs = append(s.Tail.SlowMs, t.SlowAckMs...)
				s.Tail.GetFirst += t.GetFirst
				s.Tail.Ordered += t.Ordered
				s.Tail.ConnectBeforeDrain += t.ConnectBeforeDrain
				tp50, tp99 = append(tp50, t.Ack.P50), append(tp99, t.Ack.P99)
			}
			for i, h := range r.Hold {
				if i < len(b.plan.HoldLadder) {
					hold[b.plan.HoldLadder[i]] = append(hold[b.plan.HoldLadder[i]], float64(h.RSSKB-h.BaseKB))
				}
			}
		}
		s.PollCPUPer10k, s.WSCPUPer10k, s.MemPerSession, s.Handshakes = median(poll), median(ws), median(mem), median(hs)
		s.NodePollCPU, s.NodeWSCPU, s.NodeCPU = median(npoll), median(nws), median(ntot)
		s.Tail.P50, s.Tail.P99 = median(tp50), median(tp99)
		slices.Sort(s.Tail.SlowMs)
		for _, rate := range b.plan.LatRates {
			var a, p50, p99, p999 []float64
			for _, v := range lat[rate] {
				a, p50, p99, p999 = append(a, v[0]), append(p50, v[1]), append(p99, v[2]), append(p999, v[3])
			}
			if len(a) == 0 {
				continue
			}
			pt := latPoint{Rate: rate, Achieved: median(a), P50: median(p50), P99: median(p99), P999: median(p999)}
			s.Lat = append(s.Lat, pt)
			s.Saturation = math.Max(s.Saturation, pt.Achieved)
		}
		for _, n := range b.plan.HoldLadder {
			if v := hold[n]; len(v) > 0 {
				s.HoldCurve = append(s.HoldCurve, holdStep{Sessions: n, RSSKB: int64(median(v))})
			}
		}
		s.Scale = b.scale[name]
		for _, h := range s.Scale {
			s.MaxHeld, s.MaxHeldKB = h.Sessions, h.PerSessionKB()
			if h.Sessions > last(b.plan.HoldLadder) {
				s.HoldCurve = append(s.HoldCurve, holdStep{Sessions: h.Sessions, RSSKB: h.RSSKB - h.BaseKB})
			}
		}
		out[name] = s
	}
	direct := out["direct"]
	for _, s := range out {
		if n := len(s.Lat); n > 0 {
			top := s.Lat[n-1]
			s.Saturated = top.Achieved < 0.98*float64(top.Rate)
		}
		if h := s.HoldCurve; len(b.plan.HoldLadder) > 1 && len(h) >= len(b.plan.HoldLadder) {
			first, last := h[0], h[len(b.plan.HoldLadder)-1]
			s.SlopeKB = float64(last.RSSKB-first.RSSKB) / float64(last.Sessions-first.Sessions)
		}
		for _, pt := range s.Lat {
			// 2% tolerance: a path that just kept up with rate r offered counts as saturating at r.
			if float64(pt.Rate) <= s.Saturation/2*1.02 {
				s.HalfRate = pt.Rate
			}
		}
		s.AddedP50, s.AddedP99, s.AddedP999 = math.NaN(), math.NaN(), math.NaN()
		for _, pt := range s.Lat {
			if pt.Rate != s.HalfRate {
				continue
			}
			for _, d := range direct.Lat {
				if d.Rate == pt.Rate {
					s.AddedP50, s.AddedP99, s.AddedP999 = pt.P50-d.P50, pt.P99-d.P99, pt.P999-d.P999
				}
			}
		}
	}
	return out, direct
}
