package mirror

import (
	"encoding/json"
	"errors"
)

// Socket.IO packet types.
const (
	SIOConnect      byte = 0
	SIODisconnect   byte = 1
	SIOEvent        byte = 2
	SIOAck          byte = 3
	SIOConnectError byte = 4
	SIOBinaryEvent  byte = 5
	SIOBinaryAck    byte = 6
)

// NoAck is SIOPacket.ID when a packet carries no ack id.
const NoAck int64 = -1

// ErrSIOPacket is returned for a Socket.IO packet that cannot be parsed.
var ErrSIOPacket = errors.New("socket.io: malformed packet")

// SIOPacket is the head of a Socket.IO packet (the text of an Engine.IO message). Nsp and Data alias
// the parsed bytes.
type SIOPacket struct {
	Type        byte
	Attachments int    // binary attachments that follow (types 5 and 6)
	Nsp         []byte // "/" when absent
	ID          int64  // ack id, NoAck when absent
	Data        []byte // the JSON payload, possibly empty
}

var rootNsp = []byte("/")

// ParseSIO parses "<type>[<attachments>-][<nsp>,][<ackId>][<JSON>]".
func ParseSIO(b []byte) (SIOPacket, error) {
	p := SIOPacket{ID: NoAck, Nsp: rootNsp}
	if len(b) == 0 || b[0] < '0' || b[0] > '6' {
		return p, ErrSIOPacket
	}
	p.Type = b[0] - '0'
	b = b[1:]
	if p.Type == SIOBinaryEvent || p.Type == SIOBinaryAck {
		n, rest, digits := leadingInt(b)
		if digits == 0 || len(rest) == 0 || rest[0] != '-' || n > 1<<16 {
			return p, ErrSIOPacket
		}
		p.Attachments = int(n)
		b = rest[1:]
	}
	if len(b) > 0 && b[0] == '/' {
		end := len(b)
		for i, c := range b {
			if c == ',' {
				end = i
				break
			}
		}
		p.Nsp = b[:end]
		if end < len(b) {
			end++
		}
		b = b[end:]
	}
	if n, rest, digits := leadingInt(b); digits > 0 {
		if digits > 15 {
			return p, ErrSIOPacket
		}
		p.ID = n
		b = rest
	}
	p.Data = b
	return p, nil
}

// leadingInt reads the decimal digits at the start of b.
func leadingInt(b []byte) (n int64, rest []byte, digits int) {
	for digits < len(b) && b[digits] >= '0' && b[digits] <= '9' {
		if digits < 18 {
			n = n*10 + int64(b[digits]-'0')
		}
		digits++
	}
	return n, b[digits:], digits
}

// EventName returns the event name of an EVENT or BINARY_EVENT payload (`["name", ...]`).
func EventName(data []byte) (string, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return "", false
	}
	i = skipSpace(data, i+1)
	if i >= len(data) || data[i] != '"' {
		return "", false
	}
	end := i + 1
	for end < len(data) {
		c := data[end]
		if c == '\\' {
			end += 2
			continue
		}
		if c == '"' {
			break
		}
		end++
	}
	if end >= len(data) {
		return "", false
	}
	tok := data[i : end+1]
	simple := true
	for _, c := range tok[1 : len(tok)-1] {
		if c == '\\' || c < 0x20 {
			simple = false
			break
		}
	}
	if simple {
		return string(tok[1 : len(tok)-1]), true
	}
	var s string
	if json.Unmarshal(tok, &s) != nil {
		return "", false
	}
	return s, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
