package eioserver

import (
	"go.uber.org/zap"

	"sioproxy/eioproto"
)

// sidField logs a sid as the same short hash the proxy logs (eioproto.SIDHash), never the sid
// itself: a sid is its session's bearer credential, and the hashes of the demo's backends and of
// the proxy in front of them correlate.
func sidField(sid string) zap.Field { return zap.String("sid_hash", eioproto.SIDHash(sid)) }
