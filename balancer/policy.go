package balancer

// Policy places a new session. Pure function of (snapshot, key, counters, now): it returns a
// backend for which s.Available(be, pick) holds, or nil when there is none. Implementations must be
// safe for concurrent use and should not allocate.
type Policy interface {
	Place(s *Snapshot, pick *Pick) *Backend
}

// HashKey hashes an affinity key (a header value, a user id...) into Pick.Key: FNV-1a followed by
// a 64-bit finalizer, so that nearby inputs spread. It does not allocate.
func HashKey(key []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the murmur3 64-bit finalizer.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
