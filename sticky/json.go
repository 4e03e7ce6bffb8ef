package sticky

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The open packet's JSON is first checked with json.Valid; the helpers below then walk it knowing
// it is well formed, which keeps them short and lets them record byte offsets (needed to rewrite
// the sid in place, which encoding/json cannot do).

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the closing quote of the string whose opening quote is at
// b[i], and whether it contains escapes.
func skipString(b []byte, i int) (end int, escaped bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return len(b), escaped
}

// skipValue returns the index after the (valid) JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := skipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i, _ = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default:
		for i < len(b) && !isJSONSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
			i++
		}
		return i
	}
}

// openFields are the fields of an open packet's JSON object that the proxy uses. Offsets are
// relative to the object's bytes; the sid span excludes the quotes.
type openFields struct {
	sidStart, sidEnd int
	sidEscaped       bool
	sidFound         bool
	pingInterval     int64 // milliseconds, -1 when absent or not a usable number
	pingTimeout      int64
	maxPayload       int64
}

// scanOpen walks a valid JSON document and picks the open packet fields from its top-level object.
// As with JSON.parse, the last occurrence of a key wins.
func scanOpen(obj []byte) (openFields, error) {
	f := openFields{pingInterval: -1, pingTimeout: -1, maxPayload: -1}
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return f, errorf("open packet is not a JSON object")
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
		if i >= len(obj) || obj[i] == '}' {
			break
		}
		keyEnd, keyEscaped := skipString(obj, i)
		key := obj[i+1 : keyEnd-1]
		if keyEscaped {
			var s string
			if err := json.Unmarshal(obj[i:keyEnd], &s); err != nil {
				return f, errorf("bad key: %v", err)
			}
			key = []byte(s)
		}
		i = skipSpace(obj, keyEnd) // now at ':'
		i = skipSpace(obj, i+1)
		if i >= len(obj) {
			return f, errorf("truncated object")
		}
		end := skipValue(obj, i)
		val := obj[i:end]
		switch string(key) {
		case "sid":
			if val[0] != '"' {
				return f, errorf("sid is not a string")
			}
			_, f.sidEscaped = skipString(val, 0)
			f.sidStart, f.sidEnd, f.sidFound = i+1, end-1, true
		case "pingInterval":
			f.pingInterval = jsonMillis(val)
		case "pingTimeout":
			f.pingTimeout = jsonMillis(val)
		case "maxPayload":
			f.maxPayload = jsonMillis(val)
		}
		i = end
	}
	if !f.sidFound {
		return f, errorf("no sid")
	}
	return f, nil
}

// maxMillis bounds accepted timer and size values (2^42 ms is about 139 years; a Duration holds it).
const maxMillis = 1 << 42

// jsonMillis reads a non-negative JSON number, truncated to an integer; -1 for anything else.
func jsonMillis(v []byte) int64 {
	if len(v) == 0 || v[0] == '-' || v[0] == '"' || !(v[0] >= '0' && v[0] <= '9') {
		return -1
	}
	if len(v) <= 12 && bytes.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		var n int64
		for _, c := range v {
			n = n*10 + int64(c-'0')
		}
		if n > maxMillis {
			return -1
		}
		return n
	}
	x, err := strconv.ParseFloat(string(v), 64)
	if err != nil || x < 0 || x > maxMillis {
		return -1
	}
	return int64(x)
}
