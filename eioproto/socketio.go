package eioproto

import (
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

// DecodeSocketIO decodes "<type>[<attachments>-][<nsp>,][<ackId>][<JSON>]". Attachment counts and
// ack ids of up to 18 digits decode; bounding them further is the caller's policy.
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
