package proxy

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Hop-by-hop headers (RFC 9110 §7.6.1), removed on both legs of a forwarded request.
var hopHeaders = [][]byte{
	[]byte("Keep-Alive"),
	[]byte("Proxy-Connection"),
	[]byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"),
	[]byte("Te"),
	[]byte("Trailer"),
	[]byte("Upgrade"),
}

var (
	headerXFF        = []byte("X-Forwarded-For")
	headerXFProto    = []byte("X-Forwarded-Proto")
	headerXFHost     = []byte("X-Forwarded-Host")
	headerXRealIP    = []byte("X-Real-Ip")
	headerConnection = []byte("Connection")
	valueHTTP        = []byte("http")
	valueHTTPS       = []byte("https")
	strUpgrade       = []byte("upgrade")
	strWebSocket     = []byte("websocket")
	strKeepAlive     = []byte("keep-alive")
	strClose         = []byte("close")
)

// trustedNets decides whose X-Forwarded-For is believed.
type trustedNets []netip.Prefix

func (t trustedNets) contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the TCP peer of the request as a netip.Addr (unmapped).
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// clientAddr is the address of the client: the TCP peer, or, when the peer is a trusted proxy, the
// rightmost X-Forwarded-For entry that is not itself trusted.
func clientAddr(ctx *fasthttp.RequestCtx, trusted trustedNets) netip.Addr {
	peer := peerAddr(ctx)
	if len(trusted) == 0 || !trusted.contains(peer) {
		return peer
	}
	return forwardedClient(ctx.Request.Header.PeekBytes(headerXFF), peer, trusted)
}

// forwardedClient walks an X-Forwarded-For value from the right, past trusted proxies, and returns
// the first untrusted address; a malformed entry stops the walk at the last trusted hop.
func forwardedClient(xff []byte, peer netip.Addr, trusted trustedNets) netip.Addr {
	for len(xff) > 0 {
		i := bytes.LastIndexByte(xff, ',')
		part := bytes.TrimSpace(xff[i+1:])
		xff = xff[:max(i, 0)]
		a, err := netip.ParseAddr(string(part))
		if err != nil {
			return peer
		}
		a = a.Unmap()
		if !trusted.contains(a) {
			return a
		}
		peer = a
		if i < 0 {
			break
		}
	}
	return peer
}

// setForwarded appends the peer to X-Forwarded-For and sets X-Forwarded-Proto, -Host and X-Real-IP.
// buf is scratch space (the header copies values).
func setForwarded(ctx *fasthttp.RequestCtx, trusted trustedNets, buf []byte) {
	h := &ctx.Request.Header
	peer := peerAddr(ctx)
	buf = buf[:0]
	if prior := h.PeekBytes(headerXFF); len(prior) > 0 {
		buf = append(buf, prior...)
		buf = append(buf, ", "...)
	}
	buf = peer.AppendTo(buf)
	h.SetBytesKV(headerXFF, buf)
	client := clientAddr(ctx, trusted)
	h.SetBytesKV(headerXRealIP, client.AppendTo(buf[len(buf):]))
	if ctx.IsTLS() {
		h.SetBytesKV(headerXFProto, valueHTTPS)
	} else if len(trusted) == 0 || !trusted.contains(peer) || len(h.PeekBytes(headerXFProto)) == 0 {
		h.SetBytesKV(headerXFProto, valueHTTP)
	}
	if len(h.PeekBytes(headerXFHost)) == 0 || len(trusted) == 0 || !trusted.contains(peer) {
		h.SetBytesKV(headerXFHost, h.Host())
	}
}

// stripHop removes hop-by-hop headers, including those named by Connection, from a request header.
func stripHopRequest(h *fasthttp.RequestHeader) {
	if c := h.PeekBytes(headerConnection); len(c) > 0 {
		delConnectionTokens(c, h.DelBytes)
		h.DelBytes(headerConnection)
	}
	for _, k := range hopHeaders {
		h.DelBytes(k)
	}
}

// stripHopResponse removes hop-by-hop headers from a backend response.
func stripHopResponse(h *fasthttp.ResponseHeader) {
	if c := h.PeekBytes(headerConnection); len(c) > 0 {
		delConnectionTokens(c, h.DelBytes)
	}
	for _, k := range hopHeaders {
		h.DelBytes(k)
	}
}

// nextToken splits the first comma-separated token off v.
func nextToken(v []byte) (tok, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return bytes.TrimSpace(v[:i]), v[i+1:]
	}
	return bytes.TrimSpace(v), nil
}

// delConnectionTokens deletes the headers named in a Connection header value.
func delConnectionTokens(c []byte, del func([]byte)) {
	for len(c) > 0 {
		var tok []byte
		tok, c = nextToken(c)
		if len(tok) > 0 && !bytes.EqualFold(tok, strClose) && !bytes.EqualFold(tok, strKeepAlive) {
			del(tok)
		}
	}
}

// isUpgrade reports a WebSocket upgrade request: Upgrade: websocket and Connection containing upgrade.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	u := h.Peek(fasthttp.HeaderUpgrade)
	if len(u) == 0 || !bytes.EqualFold(bytes.TrimSpace(u), strWebSocket) {
		return false
	}
	for c := h.PeekBytes(headerConnection); len(c) > 0; {
		var tok []byte
		tok, c = nextToken(c)
		if bytes.EqualFold(tok, strUpgrade) {
			return true
		}
	}
	return false
}
