package proxy

import (
	"encoding/hex"
	"hash/fnv"

	"go.uber.org/zap"
)

// sidField logs a sid as a short hash: a sid is its session's bearer credential and never appears in
// a log line, but the same sid always gives the same hash, so lines of one session correlate.
func sidField[T string | []byte](sid T) zap.Field {
	return zap.String("sid_hash", SIDHash(sid))
}

// SIDHash is the short, stable, one-way form of a sid used in logs and reports (12 hex digits of
// FNV-1a 64). An empty sid gives "".
func SIDHash[T string | []byte](sid T) string {
	if len(sid) == 0 {
		return ""
	}
	h := fnv.New64a()
	h.Write([]byte(sid))
	var sum [8]byte
	return hex.EncodeToString(h.Sum(sum[:0]))[:12]
}
