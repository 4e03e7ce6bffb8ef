package sticky

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// ErrNotRewritable is returned by RewriteHandshake when the body was parsed but its sid cannot be
// replaced safely: JSONP, a sid JSON string with escapes or that is not valid UTF-8 text, or an
// invalid tag. The caller should pass
// the body through unchanged and rely on the session table.
var ErrNotRewritable = errors.New("sticky: handshake not rewritable")

// RewriteHandshake appends to dst the body with the sid replaced by the tagged sid, length prefixes fixed.
// JSONP (and anything not safely rewritable) returns ErrNotRewritable with the parsed Handshake.
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
	case !plainSID(body[p.sidStart:p.sidEnd]):
		// A client decodes invalid UTF-8 to U+FFFD and would send back another sid than the
		// backend's: no tag can make that session work, so the body passes as it is.
		return dst, p.hs, fmt.Errorf("%w: sid is not valid UTF-8 text", ErrNotRewritable)
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

// plainSID reports whether a sid is valid UTF-8 without control characters: what a client reads
// back byte for byte.
func plainSID(sid []byte) bool {
	if !utf8.Valid(sid) {
		return false
	}
	for _, c := range sid {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
