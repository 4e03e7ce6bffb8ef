package balancer

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Pick describes one placement. Place hands it to the Policy interface, so a Pick escapes to the
// heap: reuse one per worker (resetting Now and Exclude) or pool them to keep handshakes
// allocation-free.
type Pick struct {
	Key     uint64     // affinity key hash (0 + HasKey=false when there is none); see HashKey
	HasKey  bool       // Key is set
	Exclude []*Backend // backends already tried for this request (handshake retry)
	Now     int64      // unix nanos; Place fills it from the Balancer's clock when it is 0
}

// Balancer publishes backend snapshots and places new sessions on them. Place takes no lock;
// Update and the ejection decision of ReportFailure serialize among themselves.
type Balancer struct {
	env    *env
	snap   atomic.Pointer[Snapshot]
	policy atomic.Pointer[policyBox]
	stats  atomic.Pointer[map[string]*Stats]

	mu        sync.Mutex // serializes Update
	lastSpecs []Spec     // normalized input of the current snapshot
	ejectMu   sync.Mutex // serializes ejection decisions (the fraction cap)
}

type policyBox struct{ p Policy }

// New returns a Balancer with policy p (nil: P2C) and an empty snapshot.
func New(p Policy, opts ...Option) *Balancer {
	b := &Balancer{env: defaultEnv()}
	for _, o := range opts {
		o(b)
	}
	b.SetPolicy(p)
	b.snap.Store(&Snapshot{env: b.env})
	b.stats.Store(&map[string]*Stats{})
	return b
}

// SetPolicy swaps the placement policy atomically (hot reload). nil selects P2C.
func (b *Balancer) SetPolicy(p Policy) {
	if p == nil {
		p = NewP2C()
	}
	b.policy.Store(&policyBox{p})
}

// Policy returns the current placement policy.
func (b *Balancer) Policy() Policy { return b.policy.Load().p }

// Snapshot returns the current snapshot; never nil (empty before the first Update).
func (b *Balancer) Snapshot() *Snapshot { return b.snap.Load() }

// Stats returns the live counters of backend id: a member of the current snapshot, or a departed
// backend that still has sessions, tunnels or requests in flight. nil if unknown.
func (b *Balancer) Stats(id string) *Stats { return (*b.stats.Load())[id] }

// Update builds and publishes a new snapshot of specs. Input identical to the current one (in any
// order) is skipped and the snapshot pointer stays the same. Specs are ordered by ID; of duplicate
// IDs the first wins. Two backends whose tags collide both get Tag "".
func (b *Balancer) Update(specs []Spec) {
	norm := normalize(specs)
	b.mu.Lock()
	defer b.mu.Unlock()
	if slicesEqual(norm, b.lastSpecs) {
		return
	}
	s, stats := buildSnapshot(b.env, norm, b.snap.Load(), *b.stats.Load(), b.env.now().UnixNano())
	b.stats.Store(&stats)
	b.snap.Store(s)
	b.lastSpecs = norm
}

func slicesEqual(a, b []Spec) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Place places a new session; nil when no backend can take it (see PlaceWithReason). Call it only
// for handshakes or other new sessions: a successful placement takes an admission token and counts
// a handshake.
func (b *Balancer) Place(pick *Pick) *Backend {
	be, _ := b.PlaceWithReason(pick)
	return be
}

// PlaceWithReason is Place that also says why it returned nil: NoBackends (map to 503) or AllFull
// (map to 503 with Retry-After, see RetryAfter). Eligible means Active, Weight > 0, not ejected and
// not excluded; admission then skips backends over their handshake rate or session cap.
func (b *Balancer) PlaceWithReason(pick *Pick) (*Backend, Reason) {
	if pick.Now == 0 {
		pick.Now = b.env.now().UnixNano()
	}
	s := b.snap.Load()
	p := b.policy.Load().p
	if s.zone != nil { // WithZonePreference: the proxy's zone first
		if be := b.placeIn(s.zone, p, pick); be != nil {
			return be, OK
		}
	}
	if be := b.placeIn(s, p, pick); be != nil {
		return be, OK
	}
	return nil, s.reason(pick)
}

// placeIn asks p for a backend of s and takes its admission token; nil when p finds none that
// can take the session.
func (b *Balancer) placeIn(s *Snapshot, p Policy, pick *Pick) *Backend {
	e := b.env
	// A token can be taken by a concurrent Place between the policy's look and our take; the policy
	// then sees the bucket empty on the next round, so this converges.
	for range len(s.cands) + 1 {
		be := p.Place(s, pick)
		if be == nil {
			return nil
		}
		if e.maxSessions > 0 && be.Sessions.Load() >= e.maxSessions {
			continue
		}
		if e.interval > 0 && !be.takeToken(pick.Now, e.interval, e.burst) {
			continue
		}
		be.Handshakes.Add(1)
		return be
	}
	return nil
}

// RetryAfter estimates how long until some eligible backend can take a new session again, rounded
// up to whole seconds and at least 1s: the time to the next handshake token, or 1s when session
// caps are what is full. Use it for Retry-After when PlaceWithReason says AllFull.
func (b *Balancer) RetryAfter() time.Duration {
	s := b.snap.Load()
	e := b.env
	now := e.now().UnixNano()
	pick := Pick{Now: now}
	wait := int64(math.MaxInt64)
	for _, be := range s.cands {
		if !s.Eligible(be, &pick) || e.maxSessions > 0 && be.Sessions.Load() >= e.maxSessions {
			continue
		}
		if e.interval > 0 {
			wait = min(wait, be.tokenWait(now, e.interval, e.burst))
		}
	}
	if wait == math.MaxInt64 {
		return time.Second
	}
	d := (time.Duration(wait) + time.Second - 1).Truncate(time.Second)
	return max(d, time.Second)
}
