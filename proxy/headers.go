package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
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
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr { return addrOf(ctx.RemoteAddr()) }

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

// nextToken splits the first comma-separated token off v.
func nextToken(v []byte) (tok, rest []byte) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		return bytes.TrimSpace(v[:i]), v[i+1:]
	}
	return bytes.TrimSpace(v), nil
}

// maxStrip bounds the response fields one pass removes (a backend naming more in Connection gets
// the rest removed by further passes).
const maxStrip = 16

// stripResponse removes hop-by-hop fields from a backend's response head, whatever their case: the
// Connection header and the fields it names, Keep-Alive, Proxy-*, TE, Trailer announcements stay
// (fasthttp frames trailers itself), and Upgrade unless the answer is the 101 of a tunnel. What the
// proxy does with the client connection is then its own single Connection header.
func stripResponse(h *fasthttp.ResponseHeader, keepUpgrade bool) {
	for pass := 0; pass < 4; pass++ {
		var del [maxStrip][]byte
		n := 0
		var conn [maxConnTokens][]byte
		nc := 0
		for k, v := range h.All() {
			if headerID(k) == hdrConnection {
				for len(v) > 0 && nc < maxConnTokens {
					var tok []byte
					tok, v = nextToken(v)
					if len(tok) > 0 && !foldEq(tok, "close") && !foldEq(tok, "keep-alive") && !(keepUpgrade && foldEq(tok, "upgrade")) {
						conn[nc] = tok
						nc++
					}
				}
			}
		}
		for k := range h.All() {
			if n == maxStrip {
				break
			}
			switch headerID(k) {
			case hdrConnection, hdrKeepAlive, hdrProxyConnection, hdrProxyAuthenticate, hdrProxyAuthorization, hdrTE:
				del[n] = k
				n++
				continue
			case hdrUpgrade:
				if !keepUpgrade {
					del[n] = k
					n++
				}
				continue
			}
			for i := 0; i < nc; i++ {
				if bytes.EqualFold(conn[i], k) {
					del[n] = k
					n++
					break
				}
			}
		}
		if n == 0 {
			break
		}
		for i := 0; i < n; i++ {
			h.DelBytes(del[i])
		}
	}
	h.ResetConnectionClose()
}
