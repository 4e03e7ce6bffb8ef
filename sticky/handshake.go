package sticky

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"sioproxy/eioproto"
)

// Format is the framing of a handshake (polling) response.
type Format uint8

const (
	// FormatUnknown is the zero Format (no handshake parsed).
	FormatUnknown Format = iota
	// FormatV4 is Engine.IO v4 framing: packets separated by 0x1E.
	FormatV4
	// FormatV3Text is Engine.IO v3 text framing: "N:packet", N in UTF-16 units.
	FormatV3Text
	// FormatV3Binary is Engine.IO v3 XHR2 binary framing: 0x00|0x01, digit bytes, 0xFF, packet.
	FormatV3Binary
	// FormatJSONP is Engine.IO v3 JSONP: ___eio[N]("payload");
	FormatJSONP
)

// String returns a short name of the format.
func (f Format) String() string {
	switch f {
	case FormatV4:
		return "v4"
	case FormatV3Text:
		return "v3-text"
	case FormatV3Binary:
		return "v3-binary"
	case FormatJSONP:
		return "jsonp"
	default:
		return "unknown"
	}
}

// Handshake is what the proxy keeps from an Engine.IO open packet.
type Handshake struct {
	SID          []byte        // raw sid the backend issued (aliases body or a copy)
	PingInterval time.Duration // 0 when absent or not a usable number
	PingTimeout  time.Duration // 0 when absent or not a usable number
	MaxPayload   int64         // 0 when absent (engine.io < 6.2) or not a usable number
	Format       Format
}

// ErrBadHandshake is wrapped by every error of ParseHandshake about malformed or truncated input.
var ErrBadHandshake = errors.New("sticky: malformed handshake")

func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadHandshake}, args...)...)
}

// parsed is a handshake plus where its parts sit in the body, for RewriteHandshake.
type parsed struct {
	hs Handshake
	// Length prefix of the open packet (v3 framings): digits span [lenStart, lenEnd) and value n.
	lenStart, lenEnd, n int
	// sid string contents (without quotes) in the body; meaningless for JSONP.
	sidStart, sidEnd int
	sidEscaped       bool
}

// ParseHandshake reads the open packet at the start of a decompressed handshake response body
// (engineio-for-proxies.md §2 "Robust extraction"): JSONP, v3 binary, v3 text or v4 framing, the
// first packet only. The packet must be '0' followed by a JSON object with a non-empty string sid.
// Errors wrap ErrBadHandshake. It never panics.
func ParseHandshake(body []byte) (Handshake, error) {
	p, err := parse(body)
	return p.hs, err
}

func parse(body []byte) (parsed, error) {
	if bytes.HasPrefix(body, jsonpPrefix) {
		lit, ok := jsonpLiteral(body)
		if !ok {
			return parsed{}, errorf("JSONP without (\"...\")")
		}
		var inner string
		if err := json.Unmarshal(lit, &inner); err != nil {
			return parsed{}, errorf("JSONP literal: %v", err)
		}
		payload := []byte(inner)
		if bytes.HasPrefix(payload, jsonpPrefix) {
			return parsed{}, errorf("nested JSONP")
		}
		p, err := parseFramed(payload)
		p.hs.Format = FormatJSONP
		return p, err
	}
	return parseFramed(body)
}

// parseFramed locates the first packet of a v3 binary, v3 text or v4 body and parses it.
func parseFramed(body []byte) (parsed, error) {
	var p parsed
	var start, end int
	switch {
	case len(body) == 0:
		return p, errorf("empty body")
	case body[0] <= 1:
		p.hs.Format = FormatV3Binary
		b, ok := eioproto.NextV3Binary(body, 0)
		if !ok {
			return p, errorf("bad or truncated v3 binary framing")
		}
		if b.Binary {
			return p, errorf("first v3 packet is binary")
		}
		p.lenStart, p.lenEnd, p.n = 1, b.FF, b.N
		start, end = b.Start, b.End
	case eioproto.LooksV3Text(body):
		p.hs.Format = FormatV3Text
		t, ok := eioproto.NextV3Text(body, 0)
		if !ok {
			return p, errorf("bad or truncated v3 text framing")
		}
		p.lenStart, p.lenEnd, p.n = 0, t.LenEnd, t.N
		start, end = t.Start, t.End
	default:
		p.hs.Format = FormatV4
		end = bytes.IndexByte(body, 0x1E)
		if end < 0 {
			end = len(body)
		}
	}
	if start >= end || body[start] != '0' {
		return p, errorf("first packet is not an open packet")
	}
	obj := body[start+1 : end]
	if !json.Valid(obj) {
		return p, errorf("open packet is not valid JSON")
	}
	f, err := scanOpen(obj)
	if err != nil {
		return p, err
	}
	base := start + 1
	p.sidStart, p.sidEnd, p.sidEscaped = base+f.sidStart, base+f.sidEnd, f.sidEscaped
	sid := body[p.sidStart:p.sidEnd:p.sidEnd]
	if f.sidEscaped {
		var s string
		if err := json.Unmarshal(body[p.sidStart-1:p.sidEnd+1], &s); err != nil {
			return p, errorf("sid: %v", err)
		}
		sid = []byte(s)
	}
	if len(sid) == 0 {
		return p, errorf("empty sid")
	}
	p.hs.SID = sid
	p.hs.PingInterval = millis(f.pingInterval)
	p.hs.PingTimeout = millis(f.pingTimeout)
	p.hs.MaxPayload = max(f.maxPayload, 0)
	return p, nil
}

func millis(ms int64) time.Duration {
	if ms < 0 {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}
