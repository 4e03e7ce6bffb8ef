package sticky

import "time"

// EvictBackend removes up to limit entries of backendID (limit <= 0: all), calling onEvict for
// each, and returns their sids.
func (t *Table) EvictBackend(backendID string, limit int) []string {
	return t.EvictBackendIf(backendID, limit, nil)
}

// EvictBackendIf is EvictBackend for the entries whose in-flight state pick accepts (nil: every
// entry). A drain deadline uses it to end, a few at a time, the sessions this process holds.
func (t *Table) EvictBackendIf(backendID string, limit int, pick func(*Order) bool) []string {
	removed := 0
	var all, gone []string
	for i := range t.shards {
		if limit > 0 && removed >= limit {
			break
		}
		s := &t.shards[i]
		gone = gone[:0]
		s.mu.Lock()
		if s.counts[backendID] > 0 {
			for sid, e := range s.m {
				if e.backendID != backendID || pick != nil && !pick(&e.order) {
					continue
				}
				delete(s.m, sid)
				s.decr(backendID)
				gone = append(gone, sid)
				if removed++; limit > 0 && removed >= limit {
					break
				}
			}
		}
		s.mu.Unlock()
		for _, sid := range gone {
			t.onEvict(sid, backendID)
		}
		all = append(all, gone...)
	}
	return all
}

// LastSeen returns when sid was last put or got (its expiry minus its TTL); ok is false when sid
// is absent or never expires. The proxy uses it to tell an upgraded session (polling stopped when
// its WebSocket opened) from a failed upgrade probe (polling went on).
func (t *Table) LastSeen(sid []byte) (seen time.Time, ok bool) {
	s := shardFor(t, sid)
	s.mu.RLock()
	e := s.m[string(sid)]
	s.mu.RUnlock()
	if e == nil || e.ttl <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, e.expires.Load()-e.ttl), true
}
