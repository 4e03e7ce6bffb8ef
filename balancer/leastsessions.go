package balancer

// LeastSessions places on the available backend with the smallest (Sessions+Tunnels+1)/weight
// (effective weight, so slow start counts); ties are broken from a random offset.
type LeastSessions struct{}

var _ Policy = LeastSessions{}

// NewLeastSessions returns the weighted least-sessions policy.
func NewLeastSessions() Policy { return LeastSessions{} }

// Place implements Policy.
func (LeastSessions) Place(s *Snapshot, pick *Pick) *Backend { return s.leastLoaded(pick) }
