package sticky

import (
	"bytes"
	"encoding/json"
	"net/url"

	"sioproxy/eioproto"
)

// HasClosePacket reports whether a polling payload (a poll response or a POST body, decompressed)
// contains a close packet, i.e. a packet that is exactly "1" (no implementation sends a close with
// data). It understands:
//   - v3 binary framing (first byte 0x00/0x01): a string packet 00 01 FF 31; a malformed payload
//     gives false;
//   - v3 text framing ("1:1"), parsed in full; a body that is not a well-formed v3 text payload
//     (a v4 message such as "42:x" starts like one) is read as v4;
//   - v4: packets separated by 0x1E, one equal to "1" ("4hello1" is a message, not a close);
//   - JSONP responses ___eio[N]("...") and form-encoded JSONP POST bodies d=..., unwrapped once.
func HasClosePacket(body []byte) bool {
	switch {
	case bytes.HasPrefix(body, jsonpPrefix):
		lit, ok := jsonpLiteral(body)
		if !ok {
			return false
		}
		var inner string
		if json.Unmarshal(lit, &inner) != nil {
			return false
		}
		return hasClose([]byte(inner))
	case bytes.HasPrefix(body, []byte("d=")):
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return false
		}
		return hasClose([]byte(form.Get("d")))
	}
	return hasClose(body)
}

// hasClose handles the three framings without JSONP wrapping.
func hasClose(body []byte) bool {
	if len(body) == 0 {
		return false
	}
	if body[0] <= 1 {
		found := false
		for off := 0; off < len(body); {
			p, ok := eioproto.NextV3Binary(body, off)
			if !ok {
				return false
			}
			if !p.Binary && p.N == 1 && body[p.Start] == '1' {
				found = true
			}
			off = p.End
		}
		return found
	}
	if eioproto.LooksV3Text(body) {
		found, ok := false, true
		for off := 0; off < len(body); {
			t, good := eioproto.NextV3Text(body, off)
			if !good {
				ok = false
				break
			}
			if t.End-t.Start == 1 && body[t.Start] == '1' {
				found = true
			}
			off = t.End
		}
		if ok {
			return found
		}
	}
	for len(body) > 0 {
		packet := body
		if i := bytes.IndexByte(body, 0x1E); i >= 0 {
			packet, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(packet) == 1 && packet[0] == '1' {
			return true
		}
	}
	return false
}
