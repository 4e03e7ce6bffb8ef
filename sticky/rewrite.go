package sticky

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// ErrNotRewritable is returned by RewriteHandshake when the body was parsed but its sid cannot be
// replaced safely: JSONP, a sid JSON string with escapes, or an invalid tag. The caller should pass
// the body through unchanged and rely on the session table.
var ErrNotRewritable = errors.New("sticky: handshake not rewritable")

// RewriteHandshake appends to dst the body with the sid replaced by the tagged sid, length prefixes fixed.
// JSONP (and anything not safely rewritable: a JSON-escaped sid, a v3 text open packet that is not
// valid UTF-8) returns ErrNotRewritable with the parsed Handshake.
//
// Only the sid string inside the first (open) packet changes, plus its length prefix in v3 text
// (UTF-16 units) and v3 binary (digit bytes) framing; every other byte is copied as is. The
// returned Handshake describes the original body (SID is the backend's raw sid). On any error dst
// is returned unchanged; parse errors wrap ErrBadHandshake and carry a zero Handshake.
func RewriteHandshake(dst, body []byte, tag string) ([]byte, Handshake, error) {
	p, err := parse(body)
	if err != nil {
		return dst, Handshake{}, err
	}
	switch {
	case p.hs.Format == FormatJSONP:
		return dst, p.hs, ErrNotRewritable
	case p.sidEscaped:
		return dst, p.hs, fmt.Errorf("%w: sid contains JSON escapes", ErrNotRewritable)
	case !validTag(tag):
		return dst, p.hs, fmt.Errorf("%w: invalid tag %q", ErrNotRewritable, tag)
	case p.hs.Format == FormatV3Text && !utf8.Valid(body[p.pktStart:p.pktEnd]):
		// The length counts UTF-16 units of the packet as the client decodes it; invalid UTF-8
		// decodes differently in browsers and Node than here, so a rewritten length could lie.
		return dst, p.hs, fmt.Errorf("%w: v3 text open packet is not valid UTF-8", ErrNotRewritable)
	}
	// The tagged sid is the raw sid plus taggedOverhead ASCII bytes, which are as many UTF-16 units.
	newLen := p.n + taggedOverhead
	switch p.hs.Format {
	case FormatV3Text:
		dst = strconv.AppendInt(dst, int64(newLen), 10)
		dst = append(dst, body[p.lenEnd:p.sidStart]...)
	case FormatV3Binary:
		dst = append(dst, body[0])
		var digits [20]byte
		for _, c := range strconv.AppendInt(digits[:0], int64(newLen), 10) {
			dst = append(dst, c-'0')
		}
		dst = append(dst, body[p.lenEnd:p.sidStart]...)
	default:
		dst = append(dst, body[:p.sidStart]...)
	}
	dst = AppendTagged(dst, tag, body[p.sidStart:p.sidEnd])
	dst = append(dst, body[p.sidEnd:]...)
	return dst, p.hs, nil
}
