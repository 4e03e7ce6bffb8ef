package proxy

import (
	"bytes"

	"sioproxy/sticky"
)

// Request targets. A backend must read a request as the proxy classified it (issue 10, point 8):
// engine.io matches its path on the raw request URI, a normalising server (express, nginx in front)
// on the decoded path without dot segments. A request that is Engine.IO one way and not the other
// is refused with 400; otherwise it is forwarded as sent.

// splitURI splits an origin-form request URI into path and raw query.
func splitURI(uri []byte) (path, query []byte) {
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i+1:]
	}
	return uri, nil
}

// absoluteForm splits an absolute-form target (http://host/path?q, any case of the scheme) into
// its authority and its origin form (path and query; "/" when the path is empty, appended to dst
// then). ok is false for anything else, or for an authority with user info or none at all.
func absoluteForm(dst, uri []byte) (authority, origin []byte, ok bool) {
	var rest []byte
	switch {
	case len(uri) > 7 && foldEq(uri[:7], "http://"):
		rest = uri[7:]
	case len(uri) > 8 && foldEq(uri[:8], "https://"):
		rest = uri[8:]
	default:
		return nil, nil, false
	}
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority = rest[:end]
	if len(authority) == 0 || bytes.IndexByte(authority, '@') >= 0 {
		return nil, nil, false
	}
	origin = rest[end:]
	if len(origin) == 0 || origin[0] != '/' {
		dst = append(dst, '/')
		origin = append(dst, origin...)
	}
	return authority, origin, true
}

// needsNormalizing reports whether a normalising server could read path differently from its bytes.
func needsNormalizing(path []byte) bool {
	return bytes.IndexByte(path, '%') >= 0 || bytes.IndexByte(path, '\\') >= 0 ||
		bytes.Contains(path, []byte("//")) || bytes.Contains(path, []byte("/."))
}

// appendNormalizedPath appends path as a normalising server reads it: percent escapes decoded, '\'
// as '/', repeated slashes merged, and dot segments removed (RFC 3986 5.2.4).
func appendNormalizedPath(dst, path []byte) []byte {
	start := len(dst)
	for i := 0; i < len(path); i++ {
		c := path[i]
		if d, ok := sticky.PercentEscape(path[i:]); ok {
			c = d
			i += 2
		}
		if c == '\\' {
			c = '/'
		}
		if c == '/' && len(dst) > start && dst[len(dst)-1] == '/' {
			continue
		}
		dst = append(dst, c)
	}
	return removeDotSegments(dst, start)
}

// removeDotSegments removes "." and ".." segments from dst[start:] in place.
func removeDotSegments(dst []byte, start int) []byte {
	in := dst[start:]
	out := start // write position: the output never runs ahead of the input
	for i := 0; i < len(in); {
		// the segment in[i:j], with its leading '/' when there is one
		j := i + 1
		for j < len(in) && in[j] != '/' {
			j++
		}
		seg := in[i:j]
		switch {
		case bytes.Equal(seg, []byte("/.")), bytes.Equal(seg, []byte(".")):
			if j == len(in) {
				dst = append(dst[:out], '/')
				out++
			}
		case bytes.Equal(seg, []byte("/..")), bytes.Equal(seg, []byte("..")):
			for out > start && dst[out-1] != '/' {
				out--
			}
			if out > start {
				out-- // the '/' before the removed segment
			}
			if j == len(in) {
				dst = append(dst[:out], '/')
				out++
			}
		default:
			out += copy(dst[out:], seg)
		}
		i = j
	}
	return dst[:out]
}

// ambiguousPath reports whether path is an Engine.IO path raw (as engine.io matches it) but not
// normalised (as a normalising server reads it), or the other way round.
func ambiguousPath(c *sticky.Classifier, path []byte) bool {
	if !needsNormalizing(path) {
		return false
	}
	var arr [512]byte
	norm := appendNormalizedPath(arr[:0], path)
	return c.Match(path) != c.Match(norm)
}

// maxSIDLen bounds the sids the proxy routes (default Engine.IO sids are 20 characters; tagged ones
// a few more). A longer sid is refused.
const maxSIDLen = 256

// appendQueryEscaped appends b percent-encoded where a query value needs it (anything but
// unreserved characters).
func appendQueryEscaped(dst, b []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}
