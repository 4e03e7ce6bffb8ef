package balancer

// State is the administrative state of a backend.
type State uint8

const (
	// Active backends take new sessions.
	Active State = iota
	// Draining backends keep their sessions (sticky traffic still reaches them) but get no new ones.
	Draining
)

// String returns "active" or "draining".
func (s State) String() string {
	switch s {
	case Active:
		return "active"
	case Draining:
		return "draining"
	}
	return "unknown"
}

// Spec is what config or discovery says about one backend.
type Spec struct {
	ID     string // stable id: Consul service ID, configured id, or the URL
	Addr   string // host:port to dial
	TLS    bool   // https / wss to the backend (static config may set it)
	Weight int    // relative weight for new sessions; 0 = no new sessions
	State  State
	Source string // "static", "consul", "kubernetes", ...
	Zone   string // topology zone of the backend ("" = unknown); see WithZonePreference

	TLSCAFile     string // PEM bundle that verifies a TLS backend's certificate ("" = system roots)
	TLSServerName string // name verified and sent as SNI ("" = the host of Addr)
}

// Reason tells why [Balancer.PlaceWithReason] returned what it returned.
type Reason uint8

const (
	// OK means a backend was placed.
	OK Reason = iota
	// NoBackends means no backend is eligible (none active with weight > 0, not ejected, not excluded).
	// The proxy answers 503.
	NoBackends
	// AllFull means eligible backends exist but every one is over its admission limits (handshake
	// rate or session cap). The proxy answers 503 with Retry-After (see [Balancer.RetryAfter]).
	AllFull
)

// String returns "ok", "no_backends" or "all_full".
func (r Reason) String() string {
	switch r {
	case OK:
		return "ok"
	case NoBackends:
		return "no_backends"
	case AllFull:
		return "all_full"
	}
	return "unknown"
}
