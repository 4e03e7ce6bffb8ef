// Package sticky holds the proxy's Engine.IO awareness: it classifies requests (path prefix, EIO,
// transport, sid), parses and rewrites handshake responses (v4, v3 text, v3 binary, JSONP), encodes
// backend tags into sids, spots close packets in polling payloads and keeps the session table.
//
// The package does no I/O and imports neither the balancer nor fasthttp; it works on raw bytes that
// the caller owns.
package sticky
