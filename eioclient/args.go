package eioclient

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// placeholder is how Socket.IO stands in for a binary attachment in the JSON.
type placeholder struct {
	Placeholder bool `json:"_placeholder"`
	Num         int  `json:"num"`
}

// encodeArgs appends the JSON array [head?, args...] to dst. Top-level []byte arguments become
// attachments, replaced by placeholders. head is omitted when empty (acks).
func encodeArgs(dst []byte, head string, args []any) ([]byte, [][]byte, error) {
	var atts [][]byte
	dst = append(dst, '[')
	if head != "" {
		if isJSONSafe(head) {
			dst = strconv.AppendQuote(dst, head)
		} else {
			b, _ := json.Marshal(head) // a string always marshals
			dst = append(dst, b...)
		}
	}
	for i, a := range args {
		if i > 0 || head != "" {
			dst = append(dst, ',')
		}
		if bin, ok := a.([]byte); ok {
			dst = append(dst, `{"_placeholder":true,"num":`...)
			dst = strconv.AppendInt(dst, int64(len(atts)), 10)
			dst = append(dst, '}')
			atts = append(atts, bin)
			continue
		}
		b, err := json.Marshal(a)
		if err != nil {
			return nil, nil, fmt.Errorf("eioclient: argument %d: %w", i, err)
		}
		dst = append(dst, b...)
	}
	return append(dst, ']'), atts, nil
}

// isJSONSafe reports whether strconv.Quote of s is also its JSON encoding: printable ASCII,
// where both escape only '"' and '\\' and the same way.
func isJSONSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
