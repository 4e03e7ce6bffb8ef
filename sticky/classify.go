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
	SID       []byte    // the sid query value as sent (may be tagged); nil for a handshake
	SIDStart  int       // offset of the sid value in the query (for stripping the tag); -1 if none
	JSONP     bool      // j= present (v3 JSONP polling)
	Upgrade   bool      // the caller's upgrade flag, copied
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
// The first occurrence of EIO, transport, sid and j wins; keys and values are compared as sent,
// without percent-decoding, so a percent-encoded sid is returned with its escapes untouched (the
// default Engine.IO generator only emits base64url characters, and tagged sids add only
// base64url characters and '.'). An empty sid ("sid=") counts as no sid, as in Engine.IO.
// Classify does not allocate.
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
		switch string(key) {
		case "EIO":
			if !seenEIO {
				seenEIO = true
				if len(val) == 1 && (val[0] == '3' || val[0] == '4') {
					info.EIO = int(val[0] - '0')
				}
			}
		case "transport":
			if !seenTransport {
				seenTransport = true
				switch string(val) {
				case "polling":
					info.Transport = TransportPolling
				case "websocket":
					info.Transport = TransportWebSocket
				}
			}
		case "sid":
			if !seenSID {
				seenSID = true
				if len(val) > 0 {
					info.SID = val[:len(val):len(val)]
					info.SIDStart = valStart
				}
			}
		case "j":
			info.JSONP = true
		}
		off = end + 1
	}
	return info
}
