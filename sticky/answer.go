package sticky

import "bytes"

// IsPollingAnswer reports whether a 200 response to a polling request is Engine.IO's: "ok" (any
// case) to a POST, or a payload to a GET (Content-Type text/plain or application/octet-stream, or
// text/javascript for JSONP, and a body that starts as a v4 packet, a v3 text or binary frame, or a
// JSONP call; an encoded body is judged by its type alone). Anything else that a path under an
// Engine.IO prefix may answer with 200 (socket.io's client bundle, an app's own route) is not: a
// sid the proxy has not seen becomes a session only on a real Engine.IO answer.
func IsPollingAnswer(post bool, contentType, contentEncoding, body []byte) bool {
	if post {
		return bytes.EqualFold(body, okBody) // engine.io answers "ok", python-engineio "OK"
	}
	ct := contentType
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	jsonp := bytes.EqualFold(ct, []byte("text/javascript"))
	if !jsonp && !bytes.EqualFold(ct, []byte("text/plain")) && !bytes.EqualFold(ct, []byte("application/octet-stream")) {
		return false
	}
	if len(contentEncoding) > 0 {
		return true
	}
	if len(body) == 0 {
		return false
	}
	if jsonp {
		return bytes.HasPrefix(body, jsonpPrefix)
	}
	switch c := body[0]; {
	case c >= '0' && c <= '9': // a v4 packet type, or a v3 text frame's length
		return true
	case c == 'b': // a v4 base64 binary packet
		return true
	case c == 0 || c == 1: // a v3 binary frame
		return true
	}
	return false
}

var okBody = []byte("ok")
