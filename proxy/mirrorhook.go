package proxy

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Mirror copies the client-to-server traffic of sampled sessions to a shadow cluster (package
// proxy/mirror implements it). The proxy calls it on the request path, so every method must return
// at once: copy what it keeps, queue, drop and count on overflow. It never changes what the client
// sees (design.md invariant 6).
type Mirror interface {
	// OpenPolling is called after a successful polling handshake with the raw sid the backend issued
	// and the client's handshake request; it decides (sampling) whether the session is mirrored.
	OpenPolling(sid string, req *fasthttp.Request)
	// Mirrored reports whether a raw sid is mirrored. It must not allocate.
	Mirrored(sid []byte) bool
	// ClientPolling receives the body of a polling POST of a mirrored session.
	ClientPolling(sid []byte, body []byte)
	// ServerPolling receives the body of a polling GET response of a mirrored session.
	ServerPolling(sid []byte, body []byte)
	// Tunnel is called when a WebSocket tunnel is up; rawSID is "" for a WebSocket-only session (the
	// mirror samples it then); extensions is the Sec-WebSocket-Extensions the backend accepted in its
	// 101 (nil for none: permessage-deflate changes how frames read). A nil result leaves the tunnel
	// unmirrored (parked: no goroutine while idle).
	Tunnel(rawSID string, req *fasthttp.Request, extensions []byte) MirrorTunnel
	// HTTP receives a request on a non-Engine.IO path (fire and forget, sampled by the mirror).
	HTTP(req *fasthttp.Request)
	// Close ends the mirror of a session (the primary session ended).
	Close(sid string)
}

// MirrorTunnel receives the bytes of a mirrored WebSocket tunnel, exactly as relayed, in order.
// Calls for one direction come from one goroutine. The slices are reused after the call returns.
type MirrorTunnel interface {
	FromClient(p []byte)
	FromServer(p []byte)
	Close()
}

// WithMirror sets the session mirror.
func WithMirror(m Mirror) Option { return func(p *Proxy) { p.mirror = m } }

// teeBufSize is the relay buffer of a mirrored tunnel direction.
const teeBufSize = 16 << 10

// pipeTee copies src to dst like pipe, handing every relayed chunk to tee after writing it.
func pipeTee(dst io.Writer, src io.Reader, idle time.Duration, active *atomic.Int64, tee func([]byte)) {
	dl, _ := src.(interface{ SetReadDeadline(time.Time) error })
	buf := make([]byte, teeBufSize)
	for {
		if dl != nil && idle > 0 {
			dl.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := src.Read(buf)
		if n > 0 {
			active.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			tee(buf[:n])
		}
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && time.Since(time.Unix(0, active.Load())) < idle {
				continue
			}
			return
		}
	}
}
