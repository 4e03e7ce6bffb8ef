package balancer

// P2C is the power of two choices: draw two distinct available backends with probability
// proportional to their weights and take the one with the smaller (Sessions+Tunnels+1)/effective
// weight. O(log n) per placement; it falls back to a full least-loaded scan when sampling keeps
// hitting unavailable backends. The default policy.
type P2C struct{}

var _ Policy = P2C{}

// NewP2C returns the power-of-two-choices policy.
func NewP2C() Policy { return P2C{} }

// p2cDraws bounds the draws per choice before falling back to a scan.
const p2cDraws = 4

// Place implements Policy.
func (P2C) Place(s *Snapshot, pick *Pick) *Backend {
	switch len(s.cands) {
	case 0:
		return nil
	case 1:
		if be := s.cands[0]; s.Available(be, pick) {
			return be
		}
		return nil
	}
	var a, b *Backend
	for range p2cDraws {
		if x := s.sampleWeighted(s.env.rand()); s.Available(x, pick) {
			a = x
			break
		}
	}
	if a == nil {
		return s.leastLoaded(pick)
	}
	for range p2cDraws {
		if x := s.sampleWeighted(s.env.rand()); x != a && s.Available(x, pick) {
			b = x
			break
		}
	}
	if b == nil {
		return s.leastLoaded(pick)
	}
	if s.lighter(b, a, pick.Now) {
		return b
	}
	return a
}
