package balancer

import "math"

// ReportFailure records a passive failure of be (a refused dial, a 5xx on a handshake...). After
// the failure threshold (default 1) of consecutive failures, be is ejected for the cooldown unless
// that would put more than the allowed fraction of the active backends in ejection at once.
// When the ejection ends the backend slow-starts.
func (b *Balancer) ReportFailure(be *Backend) {
	if be == nil || be.Stats == nil {
		return
	}
	be.Failures.Add(1)
	e := b.env
	if be.streak.Add(1) < e.failThreshold || e.cooldown == 0 {
		return
	}
	now := e.now().UnixNano()
	b.ejectMu.Lock()
	defer b.ejectMu.Unlock()
	if be.Ejected(now) {
		return
	}
	s := b.snap.Load()
	ejected := 0
	for _, c := range s.cands {
		if c.Ejected(now) {
			ejected++
		}
	}
	if ejected+1 > int(math.Floor(e.maxEjectFraction*float64(len(s.cands))+1e-9)) {
		return // cap reached: keep it in rotation rather than empty the pool
	}
	be.ejectedUntil.Store(now + e.cooldown)
	be.streak.Store(0)
}

// ReportSuccess records a success of be: it clears the failure streak. It does not end an
// ejection early.
func (b *Balancer) ReportSuccess(be *Backend) {
	if be == nil || be.Stats == nil {
		return
	}
	if be.streak.Load() != 0 {
		be.streak.Store(0)
	}
}
