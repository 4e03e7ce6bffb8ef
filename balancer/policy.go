package balancer

import (
	"fmt"
	"strings"
)

// Policy places a new session. Pure function of (snapshot, key, counters, now): it returns a
// backend for which s.Available(be, pick) holds, or nil when there is none. Implementations must be
// safe for concurrent use and should not allocate.
type Policy interface {
	Place(s *Snapshot, pick *Pick) *Backend
}

// Policy names accepted by PolicyByName.
const (
	PolicyRoundRobin    = "round_robin"
	PolicyLeastSessions = "least_sessions"
	PolicyP2C           = "p2c"
	PolicyHash          = "hash"
	DefaultPolicy       = PolicyP2C
)

// PolicyNames lists the names PolicyByName accepts (besides "" for the default).
func PolicyNames() []string {
	return []string{PolicyRoundRobin, PolicyLeastSessions, PolicyP2C, PolicyHash}
}

// DefaultEpsilon is the default bounded-load slack of the hash policy: no backend gets more than
// ceil(1.25 × its weighted share of the live sessions).
const DefaultEpsilon = 0.25

// PolicyConfig tunes the policies built by PolicyByName. The zero value gives the defaults.
type PolicyConfig struct {
	// Epsilon is the bounded-load slack of "hash" (0: DefaultEpsilon; negative: unbounded).
	Epsilon float64
	// KeySource says what the proxy hashes into Pick.Key for "hash", e.g. "header:X-User-Id",
	// "query:token", "cookie:uid" or "remote_addr". The balancer only carries it (see KeySource).
	KeySource string
}

// PolicyByName returns the policy called name ("" selects DefaultPolicy).
func PolicyByName(name string, cfg PolicyConfig) (Policy, error) {
	switch name {
	case "", PolicyP2C:
		return NewP2C(), nil
	case PolicyRoundRobin:
		return NewRoundRobin(), nil
	case PolicyLeastSessions:
		return NewLeastSessions(), nil
	case PolicyHash:
		return NewHash(cfg), nil
	}
	return nil, fmt.Errorf("balancer: unknown policy %q (want one of %s)", name, strings.Join(PolicyNames(), ", "))
}

// KeySource returns the configured key source of a policy that hashes a request key ("" for the
// others): the proxy computes Pick.Key from it.
func KeySource(p Policy) string {
	if k, ok := p.(interface{ KeySource() string }); ok {
		return k.KeySource()
	}
	return ""
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
