package eioserver

import (
	"encoding/hex"
	"hash/fnv"

	"go.uber.org/zap"
)

// sidField logs a sid as the same short hash the proxy logs (proxy.SIDHash: 12 hex digits of
// FNV-1a 64), never the sid itself: a sid is its session's bearer credential, and the hashes of the
// demo's backends and of the proxy in front of them correlate.
func sidField(sid string) zap.Field {
	h := fnv.New64a()
	h.Write([]byte(sid))
	var sum [8]byte
	return zap.String("sid_hash", hex.EncodeToString(h.Sum(sum[:0]))[:12])
}
