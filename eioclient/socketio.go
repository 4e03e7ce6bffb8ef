package eioclient

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Socket.IO packet types.
const (
	SIOConnect      = 0
	SIODisconnect   = 1
	SIOEvent        = 2
	SIOAck          = 3
	SIOConnectError = 4
	SIOBinaryEvent  = 5
	SIOBinaryAck    = 6
)

// NoAck marks a Socket.IO packet without an ack id.
const NoAck = -1

// maxIDDigits bounds ack ids and attachment counts to what an int64 holds.
const maxIDDigits = 18

// SocketIOPacket is one decoded Socket.IO packet. Data aliases the decoded buffer.
type SocketIOPacket struct {
	Type        int
	Attachments int
	Nsp         string // "/" when absent
	ID          int64  // NoAck when absent
	Data        []byte // JSON, possibly empty
}

// DecodeSocketIO decodes "<type>[<attachments>-][<nsp>,][<ackId>][<JSON>]".
func DecodeSocketIO(b []byte) (SocketIOPacket, error) {
	p := SocketIOPacket{Nsp: "/", ID: NoAck}
	if len(b) == 0 || b[0] < '0' || b[0] > '6' {
		return p, fmt.Errorf("%w: socket.io type", ErrBadPacket)
	}
	p.Type = int(b[0] - '0')
	b = b[1:]
	if p.Type == SIOBinaryEvent || p.Type == SIOBinaryAck {
		n, rest, digits := leadingInt(b)
		if digits == 0 || digits > maxIDDigits || len(rest) == 0 || rest[0] != '-' {
			return p, fmt.Errorf("%w: attachment count", ErrBadPacket)
		}
		p.Attachments, b = int(n), rest[1:]
	}
	if len(b) > 0 && b[0] == '/' {
		i := 0
		for i < len(b) && b[i] != ',' {
			i++
		}
		p.Nsp = string(b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	switch n, rest, digits := leadingInt(b); {
	case digits > maxIDDigits:
		return p, fmt.Errorf("%w: ack id too long", ErrBadPacket)
	case digits > 0:
		p.ID, b = n, rest
	}
	p.Data = b
	return p, nil
}

// leadingInt parses the decimal digits at the start of b; it returns how many there were (more
// than maxIDDigits: the value is meaningless).
func leadingInt(b []byte) (int64, []byte, int) {
	i := 0
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i < maxIDDigits {
			n = n*10 + int64(b[i]-'0')
		}
		i++
	}
	return n, b[i:], i
}

// AppendSocketIO appends the encoding of p (without its attachments).
func AppendSocketIO(dst []byte, p SocketIOPacket) []byte {
	dst = append(dst, '0'+byte(p.Type))
	if p.Type == SIOBinaryEvent || p.Type == SIOBinaryAck {
		dst = strconv.AppendInt(dst, int64(p.Attachments), 10)
		dst = append(dst, '-')
	}
	// "/" is implicit, unless the data would then read as a namespace (JSON never starts with
	// '/', but the encoding stays unambiguous for any data).
	if (p.Nsp != "" && p.Nsp != "/") || (p.ID < 0 && len(p.Data) > 0 && p.Data[0] == '/') {
		if p.Nsp == "" {
			p.Nsp = "/"
		}
		dst = append(dst, p.Nsp...)
		dst = append(dst, ',')
	}
	if p.ID >= 0 {
		dst = strconv.AppendInt(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}

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
