package balancer

import "sync/atomic"

// Stats are live counters of one backend. They outlive snapshots: the Balancer keeps one *Stats per
// backend ID across Update calls, so counts survive reloads and discovery changes.
//
// The proxy maintains Sessions, Tunnels and InFlight. Place increments Handshakes for every
// placement it makes; ReportFailure increments Failures.
type Stats struct {
	Sessions   atomic.Int64  // live Engine.IO sessions known to the session table
	Tunnels    atomic.Int64  // live WebSocket tunnels
	InFlight   atomic.Int64  // HTTP requests in flight
	Handshakes atomic.Uint64 // placements made on this backend (new sessions)
	Failures   atomic.Uint64 // passive failures reported

	ejectedUntil atomic.Int64 // unix nanos; the backend is ejected while now < ejectedUntil
	rampStart    atomic.Int64 // unix nanos when it joined or came back (0 = no slow start)
	streak       atomic.Int64 // consecutive failures since the last success or ejection
	tat          atomic.Int64 // admission: GCRA theoretical arrival time, unix nanos
}

// Load is the load the policies balance: live sessions plus live WebSocket tunnels.
func (st *Stats) Load() int64 { return st.Sessions.Load() + st.Tunnels.Load() }

// EjectedUntil returns the unix-nano instant a passive ejection ends (0 if never ejected; a past
// instant if the ejection is over).
func (st *Stats) EjectedUntil() int64 { return st.ejectedUntil.Load() }

// Ejected reports whether the backend is passively ejected at now (unix nanos).
func (st *Stats) Ejected(now int64) bool { return now < st.ejectedUntil.Load() }

// busy reports whether anything still references the backend, so its Stats must be kept even when
// it left the snapshot (it may come back, and the proxy still decrements these counters).
func (st *Stats) busy() bool {
	return st.Sessions.Load() > 0 || st.Tunnels.Load() > 0 || st.InFlight.Load() > 0
}

// The admission bucket is a GCRA (generic cell rate algorithm): one atomic "theoretical arrival
// time" per backend, equivalent to a token bucket of capacity burst refilled every interval, and
// lock free.

// hasToken reports, without taking it, whether a handshake token is available at now.
func (st *Stats) hasToken(now, interval, burst int64) bool {
	tat := max(st.tat.Load(), now)
	return tat+interval-now <= burst*interval
}

// takeToken takes one handshake token if one is available at now.
func (st *Stats) takeToken(now, interval, burst int64) bool {
	for {
		old := st.tat.Load()
		tat := max(old, now)
		if tat+interval-now > burst*interval {
			return false
		}
		if st.tat.CompareAndSwap(old, tat+interval) {
			return true
		}
	}
}

// tokenWait is how long after now the next token becomes available (0 if one is available).
func (st *Stats) tokenWait(now, interval, burst int64) int64 {
	tat := max(st.tat.Load(), now)
	return max(tat+interval-now-burst*interval, 0)
}

// Claim is one new session counted in its backend's Sessions from placement on, so that a burst of
// placements spreads before the sessions are established. Exactly one of Release or Keep takes it
// over; later calls do nothing. A Claim has one owner (it is not safe for concurrent use).
type Claim struct{ st *Stats }

// Claim counts a new session on be and returns its claim.
func (be *Backend) Claim() Claim {
	be.Sessions.Add(1)
	return Claim{st: be.Stats}
}

// Release takes the count back: the session did not come about, or it has ended.
func (c *Claim) Release() {
	if c.st != nil {
		c.st.Sessions.Add(-1)
		c.st = nil
	}
}

// Keep hands the count over to a new owner (which then releases it through the backend's Stats),
// and reports whether the claim still held one.
func (c *Claim) Keep() bool {
	held := c.st != nil
	c.st = nil
	return held
}
