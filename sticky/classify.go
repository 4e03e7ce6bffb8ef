package sticky

import "bytes"

// Transport is the Engine.IO transport named in the query.
type Transport uint8

const (
	// TransportUnknown is a missing or unrecognised transport parameter.
	TransportUnknown Transport = iota
	// TransportPolling is HTTP long-polling ("transport=polling").
	TransportPolling
	// TransportWebSocket is the WebSocket transport ("transport=websocket").
	TransportWebSocket
)

// String returns "unknown", "polling" or "websocket".
func (t Transport) String() string {
	switch t {
	case TransportPolling:
		return "polling"
	case TransportWebSocket:
		return "websocket"
	default:
		return "unknown"
	}
}

// DefaultPrefix is the Engine.IO path prefix used when a Classifier is given none.
const DefaultPrefix = "/socket.io/"

// Info describes one request. Slices alias the caller's bytes (valid until the request ends).
type Info struct {
	EngineIO  bool      // path is under an Engine.IO prefix
	EIO       int       // 3 or 4; 0 if missing or other
	Transport Transport // transport query parameter
	SID       []byte    // the sid query value as sent (may be tagged, may be escaped); nil for a handshake
	SIDStart  int       // offset of the sid value in the query (for stripping the tag); -1 if none
	JSONP     bool      // j= present (v3 JSONP polling)
	Upgrade   bool      // the caller's upgrade flag, copied
	// SIDEncoded: SID holds percent escapes or '+'; decode it (AppendUnescaped) before use.
	SIDEncoded bool
	// Ambiguous: EIO, transport or sid is given more than once. Engine.IO servers disagree on which
	// one counts (engine.io 6 takes the last, 3 a list), so the request cannot be classified as its
	// backend will read it; the proxy refuses it.
	Ambiguous bool
}

// prefix is one configured path prefix: base without its trailing slash, and whether the path may
// equal base exactly (true when the prefix was configured without a trailing slash).
type prefix struct {
	base      []byte
	allowBare bool
}

// Classifier recognises Engine.IO requests by path prefix and reads their query. It is immutable
// and safe for concurrent use.
type Classifier struct {
	prefixes []prefix
}

// NewClassifier returns a Classifier for the given path prefixes; empty strings are ignored and an
// empty list means DefaultPrefix. A prefix ending in "/" matches every path that starts with it; a
// prefix without the trailing slash ("/socket.io") matches the path equal to it or followed by "/".
func NewClassifier(prefixes []string) *Classifier {
	c := &Classifier{}
	for _, p := range prefixes {
		if p == "" {
			continue
		}
		bare := p[len(p)-1] != '/'
		if !bare {
			p = p[:len(p)-1]
		}
		c.prefixes = append(c.prefixes, prefix{base: []byte(p), allowBare: bare})
	}
	if len(c.prefixes) == 0 {
		c.prefixes = []prefix{{base: []byte(DefaultPrefix[:len(DefaultPrefix)-1])}}
	}
	return c
}

// Match reports whether path is under one of the classifier's prefixes.
func (c *Classifier) Match(path []byte) bool {
	for i := range c.prefixes {
		p := &c.prefixes[i]
		if !bytes.HasPrefix(path, p.base) {
			continue
		}
		if len(path) == len(p.base) {
			if p.allowBare {
				return true
			}
			continue
		}
		if path[len(p.base)] == '/' {
			return true
		}
	}
	return false
}

// Classify describes a request from its raw path and raw query (without or with the leading '?').
// Paths outside every prefix give Info{EngineIO: false, SIDStart: -1} and the query is not read.
// Keys and the EIO and transport values are compared percent-decoded (and '+' as a space), as
// engine.io reads them; the sid is returned as sent, with SIDEncoded set when it needs decoding. A
// key given twice makes the request Ambiguous (the first occurrence is what Info holds). An empty
// sid ("sid=") counts as no sid, as in Engine.IO. Classify does not allocate.
func (c *Classifier) Classify(path, query []byte, upgrade bool) Info {
	info := Info{SIDStart: -1, Upgrade: upgrade}
	if !c.Match(path) {
		return info
	}
	info.EngineIO = true
	off := 0
	if len(query) > 0 && query[0] == '?' {
		off = 1
	}
	var seenEIO, seenTransport, seenSID bool
	var kbuf, vbuf [maxKnownEscaped]byte
	for off <= len(query) {
		end := bytes.IndexByte(query[off:], '&')
		if end < 0 {
			end = len(query)
		} else {
			end += off
		}
		pair := query[off:end]
		key, val, valStart := pair, []byte(nil), end
		if eq := bytes.IndexByte(pair, '='); eq >= 0 {
			key, val, valStart = pair[:eq], pair[eq+1:], off+eq+1
		}
		key = unescapeShort(kbuf[:0], key)
		switch string(key) {
		case "EIO":
			if seenEIO {
				info.Ambiguous = true
				break
			}
			seenEIO = true
			if v := unescapeShort(vbuf[:0], val); len(v) == 1 && (v[0] == '3' || v[0] == '4') {
				info.EIO = int(v[0] - '0')
			}
		case "transport":
			if seenTransport {
				info.Ambiguous = true
				break
			}
			seenTransport = true
			switch string(unescapeShort(vbuf[:0], val)) {
			case "polling":
				info.Transport = TransportPolling
			case "websocket":
				info.Transport = TransportWebSocket
			}
		case "sid":
			if seenSID {
				info.Ambiguous = true
				break
			}
			seenSID = true
			if len(val) > 0 {
				info.SID = val[:len(val):len(val)]
				info.SIDStart = valStart
				info.SIDEncoded = hasEscapes(val)
			}
		case "j":
			info.JSONP = true
		}
		off = end + 1
	}
	return info
}

// maxKnownEscaped is the longest key or value Classify decodes to compare ("transport" and
// "websocket", every byte escaped); longer ones cannot name anything it reads.
const maxKnownEscaped = 3 * len("transport")

// unescapeShort decodes b into dst when it holds escapes and is short enough to be a known key or
// value; otherwise it returns b (which then matches nothing known, or is itself plain).
func unescapeShort(dst, b []byte) []byte {
	if len(b) > maxKnownEscaped || !hasEscapes(b) {
		return b
	}
	return AppendUnescaped(dst, b)
}

// AppendUnescaped appends the query component b decoded as a browser's URLSearchParams (and
// Node's querystring) decode it: '+' is a space, %XX a byte, and a '%' not followed by two hex
// digits stays as it is.
func AppendUnescaped(dst, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '+' {
			c = ' '
		} else if d, ok := PercentEscape(b[i:]); ok {
			c = d
			i += 2
		}
		dst = append(dst, c)
	}
	return dst
}

// PercentEscape decodes the percent escape ("%XX", either case of hex digit) b starts with; ok is
// false when b starts with none.
func PercentEscape(b []byte) (c byte, ok bool) {
	if len(b) < 3 || b[0] != '%' || !isHex(b[1]) || !isHex(b[2]) {
		return 0, false
	}
	return unhex(b[1])<<4 | unhex(b[2]), true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// hasEscapes reports whether a query component holds '%' or '+' (it needs decoding).
func hasEscapes(b []byte) bool {
	for _, c := range b {
		if c == '%' || c == '+' {
			return true
		}
	}
	return false
}
