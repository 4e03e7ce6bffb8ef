package sticky

import (
	"sync"
	"sync/atomic"
	"time"
)

// numShards is the number of independently locked parts of a Table (a power of two).
const numShards = 64

// entry is one session. backendID never changes; ttl changes only under the shard's write lock;
// expires is refreshed atomically by readers holding only the shard's read lock.
type entry struct {
	backendID string
	ttl       int64        // nanoseconds; <= 0 means no expiry
	expires   atomic.Int64 // unix nanoseconds; 0 means never
	order     Order        // the session's requests in flight (see Order)
}

// shard is one lock-protected slice of the table, padded to its own cache line(s).
type shard struct {
	mu     sync.RWMutex
	m      map[string]*entry
	counts map[string]int // backendID -> entries in this shard
	_      [24]byte
}

// Table maps raw (untagged) sids to backend ids with an idle TTL. It is sharded by an FNV-1a hash
// of the sid, so lookups of different sessions rarely contend; Get takes only a shard read lock.
// Expired entries stop being returned at once and are removed by Sweep (or Delete, or a
// PutIfAbsent that replaces them). All methods are safe for concurrent use.
type Table struct {
	now     func() time.Time
	onEvict func(sid, backendID string)
	shards  [numShards]shard
}

// NewTable returns an empty table. now is the clock (nil: time.Now). onEvict (may be nil) is called
// once for every entry removed by Delete, Sweep, EvictBackend or a PutIfAbsent that replaces an
// expired one, never with a table lock held, so it may call back into the table.
func NewTable(now func() time.Time, onEvict func(sid, backendID string)) *Table {
	if now == nil {
		now = time.Now
	}
	if onEvict == nil {
		onEvict = func(string, string) {}
	}
	t := &Table{now: now, onEvict: onEvict}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*entry)
		t.shards[i].counts = make(map[string]int)
	}
	return t
}

func shardFor[T string | []byte](t *Table, sid T) *shard {
	return &t.shards[fnv1a(fnvOffset, sid)&(numShards-1)]
}

func expiry(now, ttl int64) int64 {
	if ttl <= 0 {
		return 0
	}
	return now + ttl
}

// PutIfAbsent records that sid lives on backendID, idle-expiring after ttl (ttl <= 0: never; only
// Delete removes it), and reports whether it inserted the entry. A sid that is already present and
// not expired is left as it is (a session is inserted once); an expired entry not yet swept is
// replaced, and reported to onEvict first.
func (t *Table) PutIfAbsent(sid string, backendID string, ttl time.Duration) bool {
	now := t.now().UnixNano()
	s := shardFor(t, sid)
	s.mu.Lock()
	old := s.m[sid]
	if old != nil {
		if exp := old.expires.Load(); exp == 0 || exp > now {
			s.mu.Unlock()
			return false
		}
		s.decr(old.backendID)
	}
	e := &entry{backendID: backendID, ttl: int64(ttl)}
	e.expires.Store(expiry(now, int64(ttl)))
	s.m[sid] = e
	s.counts[backendID]++
	s.mu.Unlock()
	if old != nil {
		t.onEvict(sid, old.backendID)
	}
	return true
}

// decr drops one entry of backendID from the shard's counts; the caller holds s.mu.
func (s *shard) decr(backendID string) {
	if n := s.counts[backendID] - 1; n > 0 {
		s.counts[backendID] = n
	} else {
		delete(s.counts, backendID)
	}
}

// Get returns the backend of sid and refreshes its expiry; ok is false when the sid is unknown or
// expired. It takes only the shard's read lock and does not allocate.
func (t *Table) Get(sid []byte) (backendID string, ok bool) {
	backendID, _, ok = t.Lookup(sid)
	return backendID, ok
}

// Lookup is Get that also returns the session's ordering state (nil when ok is false). The Order
// belongs to the entry: it is gone with the session.
func (t *Table) Lookup(sid []byte) (backendID string, o *Order, ok bool) {
	now := t.now().UnixNano()
	s := shardFor(t, sid)
	s.mu.RLock()
	e := s.m[string(sid)]
	if e == nil {
		s.mu.RUnlock()
		return "", nil, false
	}
	exp := e.expires.Load()
	if exp != 0 && exp <= now {
		s.mu.RUnlock()
		return "", nil, false
	}
	if e.ttl > 0 {
		next := now + e.ttl
		for exp < next && !e.expires.CompareAndSwap(exp, next) {
			exp = e.expires.Load()
		}
	}
	backendID = e.backendID
	s.mu.RUnlock()
	return backendID, &e.order, true
}

// Delete removes sid (expired or not) and reports whether it was present; onEvict is called when
// it removed something.
func (t *Table) Delete(sid []byte) bool {
	s := shardFor(t, sid)
	s.mu.Lock()
	e := s.m[string(sid)]
	if e == nil {
		s.mu.Unlock()
		return false
	}
	delete(s.m, string(sid))
	s.decr(e.backendID)
	s.mu.Unlock()
	t.onEvict(string(sid), e.backendID)
	return true
}

// Sweep removes every expired entry, calls onEvict for each (after releasing the shard lock) and
// returns how many it removed. Call it periodically (e.g. every few seconds).
func (t *Table) Sweep() int {
	now := t.now().UnixNano()
	type evicted struct{ sid, backendID string }
	var gone []evicted
	total := 0
	for i := range t.shards {
		s := &t.shards[i]
		gone = gone[:0]
		s.mu.Lock()
		for sid, e := range s.m {
			if exp := e.expires.Load(); exp != 0 && exp <= now {
				delete(s.m, sid)
				s.decr(e.backendID)
				gone = append(gone, evicted{sid, e.backendID})
			}
		}
		s.mu.Unlock()
		for _, g := range gone {
			t.onEvict(g.sid, g.backendID)
		}
		total += len(gone)
	}
	return total
}

// Len returns the number of entries, including expired ones not yet swept.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Count returns the number of entries on backendID, including expired ones not yet swept.
func (t *Table) Count(backendID string) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += s.counts[backendID]
		s.mu.RUnlock()
	}
	return n
}
