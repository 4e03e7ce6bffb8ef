package proxy

import (
	"go.uber.org/zap"

	"sioproxy/eioproto"
)

// sidField logs a sid as a short hash: a sid is its session's bearer credential and never appears in
// a log line, but the same sid always gives the same hash, so lines of one session correlate.
func sidField[T string | []byte](sid T) zap.Field {
	return zap.String("sid_hash", SIDHash(sid))
}

// SIDHash is the short, stable, one-way form of a sid used in logs and reports (eioproto.SIDHash).
// An empty sid gives "".
func SIDHash[T string | []byte](sid T) string { return eioproto.SIDHash(sid) }
