package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Header names the proxy acts on, matched without regard to case (HAProxy in HTTP mode, Envoy and
// HTTP/2 gateways send them lowercase). hdrOther is every other name.
type hdrID uint8

const (
	hdrOther hdrID = iota
	hdrConnection
	hdrKeepAlive
	hdrProxyConnection
	hdrProxyAuthenticate
	hdrProxyAuthorization
	hdrTE
	hdrTrailer
	hdrTransferEncoding
	hdrContentLength
	hdrHost
	hdrExpect
	hdrUpgrade
	hdrXForwardedFor
	hdrXForwardedProto
	hdrXForwardedHost
	hdrXRealIP
	hdrAcceptEncoding
	hdrOrigin
)

// headerID names a header field without regard to case. It does not allocate.
func headerID(name []byte) hdrID {
	switch len(name) {
	case 2:
		if foldEq(name, "te") {
			return hdrTE
		}
	case 4:
		if foldEq(name, "host") {
			return hdrHost
		}
	case 6:
		switch {
		case foldEq(name, "expect"):
			return hdrExpect
		case foldEq(name, "origin"):
			return hdrOrigin
		}
	case 7:
		switch {
		case foldEq(name, "upgrade"):
			return hdrUpgrade
		case foldEq(name, "trailer"):
			return hdrTrailer
		}
	case 9:
		if foldEq(name, "x-real-ip") {
			return hdrXRealIP
		}
	case 10:
		switch {
		case foldEq(name, "connection"):
			return hdrConnection
		case foldEq(name, "keep-alive"):
			return hdrKeepAlive
		}
	case 14:
		if foldEq(name, "content-length") {
			return hdrContentLength
		}
	case 15:
		switch {
		case foldEq(name, "x-forwarded-for"):
			return hdrXForwardedFor
		case foldEq(name, "accept-encoding"):
			return hdrAcceptEncoding
		}
	case 16:
		switch {
		case foldEq(name, "proxy-connection"):
			return hdrProxyConnection
		case foldEq(name, "x-forwarded-host"):
			return hdrXForwardedHost
		}
	case 17:
		switch {
		case foldEq(name, "transfer-encoding"):
			return hdrTransferEncoding
		case foldEq(name, "x-forwarded-proto"):
			return hdrXForwardedProto
		}
	case 18:
		if foldEq(name, "proxy-authenticate") {
			return hdrProxyAuthenticate
		}
	case 19:
		if foldEq(name, "proxy-authorization") {
			return hdrProxyAuthorization
		}
	}
	return hdrOther
}

// foldEq compares b with lower, an ASCII lowercase string, ignoring ASCII case.
func foldEq(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// headerLines walks a raw header block (fasthttp's RawHeaders: each field line as received, then
// the blank line). A line that starts with a space or tab continues the previous one (obs-fold).
type headerLines struct{ b []byte }

// next returns the next field; fold reports a continuation line (the caller refuses the request).
func (it *headerLines) next() (name, value []byte, fold, ok bool) {
	for len(it.b) > 0 {
		line := it.b
		if i := bytes.IndexByte(it.b, '\n'); i >= 0 {
			line, it.b = it.b[:i], it.b[i+1:]
		} else {
			it.b = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue // the blank line that ends the block
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, nil, true, true
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, nil, true, true // fasthttp refuses these; never forward one
		}
		return line[:colon], trimOWS(line[colon+1:]), false, true
	}
	return nil, nil, false, false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// maxConnTokens bounds the Connection tokens remembered for stripping (more are looked up again).
const maxConnTokens = 8

// reqScan is what one pass over a request's header fields found. Slices alias the raw block.
type reqScan struct {
	bad          int // 4xx status for a request that must not be forwarded; 0 = fine
	upgrade      bool
	hasTE, hasCL bool
	origin       []byte
	xfProto      []byte // the first X-Forwarded-Proto (believed from trusted peers only)
	xfHost       []byte
	xffLines     int
	connTokens   [maxConnTokens][]byte // Connection tokens other than close/keep-alive/upgrade
	nConnTokens  int
	moreTokens   bool // more tokens than connTokens holds
	upgradeToken bool
	upgradeWS    bool
}

// scanRequest reads the header fields of a request: what the proxy needs to route and forward it,
// and whether it must be refused (obs-fold, Content-Length with Transfer-Encoding, a transfer
// coding other than chunked).
func scanRequest(h *fasthttp.RequestHeader, sc *reqScan) {
	it := headerLines{b: h.RawHeaders()}
	for {
		name, value, fold, ok := it.next()
		if !ok {
			break
		}
		if fold {
			sc.bad = fasthttp.StatusBadRequest
			return
		}
		switch headerID(name) {
		case hdrTransferEncoding:
			if sc.hasTE || !foldEq(value, "chunked") {
				sc.bad = fasthttp.StatusBadRequest
				return
			}
			sc.hasTE = true
		case hdrContentLength:
			sc.hasCL = true
		case hdrUpgrade:
			for v := value; len(v) > 0; {
				var tok []byte
				tok, v = nextToken(v)
				if foldEq(tok, "websocket") {
					sc.upgradeWS = true
				}
			}
		case hdrConnection:
			for v := value; len(v) > 0; {
				var tok []byte
				tok, v = nextToken(v)
				switch {
				case len(tok) == 0, foldEq(tok, "close"), foldEq(tok, "keep-alive"):
				case foldEq(tok, "upgrade"):
					sc.upgradeToken = true
				case sc.nConnTokens < maxConnTokens:
					sc.connTokens[sc.nConnTokens] = tok
					sc.nConnTokens++
				default:
					sc.moreTokens = true
				}
			}
		case hdrOrigin:
			if sc.origin == nil {
				sc.origin = value
			}
		case hdrXForwardedProto:
			if sc.xfProto == nil {
				sc.xfProto = value
			}
		case hdrXForwardedHost:
			if sc.xfHost == nil {
				sc.xfHost = value
			}
		case hdrXForwardedFor:
			sc.xffLines++
		}
	}
	if sc.hasTE && sc.hasCL {
		sc.bad = fasthttp.StatusBadRequest
	}
	sc.upgrade = sc.upgradeWS && sc.upgradeToken
}

// namedByConnection reports whether a Connection header of the request names name.
func (sc *reqScan) namedByConnection(h *fasthttp.RequestHeader, name []byte) bool {
	for i := 0; i < sc.nConnTokens; i++ {
		if bytes.EqualFold(sc.connTokens[i], name) {
			return true
		}
	}
	if !sc.moreTokens {
		return false
	}
	it := headerLines{b: h.RawHeaders()}
	for {
		n, v, _, ok := it.next()
		if !ok {
			return false
		}
		if headerID(n) != hdrConnection {
			continue
		}
		for len(v) > 0 {
			var tok []byte
			tok, v = nextToken(v)
			if bytes.EqualFold(tok, name) {
				return true
			}
		}
	}
}

// appendXFF appends the values of every X-Forwarded-For line of the request, in order, joined by
// ", ".
func appendXFF(dst []byte, h *fasthttp.RequestHeader) []byte {
	it := headerLines{b: h.RawHeaders()}
	first := true
	for {
		name, value, _, ok := it.next()
		if !ok {
			return dst
		}
		if headerID(name) != hdrXForwardedFor || len(value) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ", "...)
		}
		dst = append(dst, value...)
		first = false
	}
}

// headOpts says how the head sent to a backend differs from the client's.
type headOpts struct {
	upgrade    bool  // a WebSocket upgrade: Upgrade passes, Connection: Upgrade is set
	dropAE     bool  // no Accept-Encoding (a handshake: the sid is read from the body)
	bodyLen    int64 // Content-Length sent; -1: chunked; -2: no body
	isTLS      bool  // the client reached the proxy over TLS
	trailers   bool  // a chunked body read whole: its trailer fields join the head
	trusted    trustedNets
	peer       netip.Addr
	clientAddr netip.Addr
}

// appendHead appends the request head a backend gets: the request line in origin form over
// HTTP/1.1, Host, the client's fields as received except hop-by-hop ones (and those its Connection
// header names) and forwarding fields, then the proxy's own X-Forwarded-For (the client's lines and
// the peer), X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host, and the body's framing. Nothing of
// the client's request is changed, so a retry builds the same head again.
func appendHead(dst []byte, h *fasthttp.RequestHeader, sc *reqScan, o *headOpts) []byte {
	dst = append(dst, h.Method()...)
	dst = append(dst, ' ')
	dst = append(dst, h.RequestURI()...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, h.Host()...)
	dst = append(dst, "\r\n"...)
	it := headerLines{b: h.RawHeaders()}
	for {
		name, value, _, ok := it.next()
		if !ok {
			break
		}
		switch headerID(name) {
		case hdrOther, hdrOrigin:
			if sc.nConnTokens > 0 && sc.namedByConnection(h, name) {
				continue
			}
		case hdrUpgrade:
			if !o.upgrade {
				continue
			}
		case hdrAcceptEncoding:
			if o.dropAE {
				continue
			}
		default: // hop-by-hop, framing, Host, Expect and forwarding fields: the proxy writes its own
			continue
		}
		dst = append(dst, name...)
		dst = append(dst, ": "...)
		dst = append(dst, value...)
		dst = append(dst, "\r\n"...)
	}
	if o.trailers {
		dst = appendTrailers(dst, h)
	}
	trustedPeer := len(o.trusted) > 0 && o.trusted.contains(o.peer)
	dst = append(dst, "X-Forwarded-For: "...)
	if sc.xffLines > 0 {
		n := len(dst)
		dst = appendXFF(dst, h)
		if len(dst) > n {
			dst = append(dst, ", "...)
		}
	}
	dst = o.peer.AppendTo(dst)
	dst = append(dst, "\r\nX-Real-IP: "...)
	dst = o.clientAddr.AppendTo(dst)
	dst = append(dst, "\r\nX-Forwarded-Proto: "...)
	switch {
	case o.isTLS:
		dst = append(dst, "https"...)
	case trustedPeer && len(sc.xfProto) > 0:
		dst = append(dst, sc.xfProto...)
	default:
		dst = append(dst, "http"...)
	}
	dst = append(dst, "\r\nX-Forwarded-Host: "...)
	if trustedPeer && len(sc.xfHost) > 0 {
		dst = append(dst, sc.xfHost...)
	} else {
		dst = append(dst, h.Host()...)
	}
	dst = append(dst, "\r\n"...)
	switch {
	case o.upgrade:
		dst = append(dst, "Connection: Upgrade\r\n"...)
	case o.bodyLen >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = fasthttp.AppendUint(dst, int(o.bodyLen))
		dst = append(dst, "\r\n"...)
	case o.bodyLen == -1:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// requestClient is the client address of a request: the peer, or the first untrusted address of
// its X-Forwarded-For lines (walked from the right) when the peer is a trusted proxy. scratch is
// space for the joined lines.
func requestClient(h *fasthttp.RequestHeader, sc *reqScan, peer netip.Addr, trusted trustedNets, scratch []byte) netip.Addr {
	if len(trusted) == 0 || !trusted.contains(peer) || sc.xffLines == 0 {
		return peer
	}
	return forwardedClient(appendXFF(scratch[:0], h), peer, trusted)
}
