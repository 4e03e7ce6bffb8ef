package eioproto

import (
	"encoding/hex"
	"hash/fnv"
)

// SIDHash is the short, stable, one-way form of a sid used in logs and reports (12 hex digits of
// FNV-1a 64): a sid is its session's bearer credential, but the same sid always gives the same
// hash, so the lines of one session correlate across the proxy and its backends. An empty sid
// gives "".
func SIDHash[T string | []byte](sid T) string {
	if len(sid) == 0 {
		return ""
	}
	h := fnv.New64a()
	h.Write([]byte(sid))
	var sum [8]byte
	return hex.EncodeToString(h.Sum(sum[:0]))[:12]
}
