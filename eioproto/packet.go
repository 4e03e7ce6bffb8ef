package eioproto

import "errors"

// PacketType is an Engine.IO packet type (the same in v3 and v4).
type PacketType byte

// Engine.IO packet types.
const (
	PacketOpen    PacketType = 0
	PacketClose   PacketType = 1
	PacketPing    PacketType = 2
	PacketPong    PacketType = 3
	PacketMessage PacketType = 4
	PacketUpgrade PacketType = 5
	PacketNoop    PacketType = 6
)

// Packet is one Engine.IO packet. A binary packet is always a message in v4; its Data is the raw
// bytes. Text Data is what follows the type digit. (Data comes first: the struct is then 32 bytes.)
type Packet struct {
	Data   []byte
	Type   PacketType
	Binary bool
}

// Framing errors.
var (
	ErrEmptyPayload = errors.New("eioproto: empty payload")
	ErrBadPacket    = errors.New("eioproto: malformed packet")
	ErrBadLength    = errors.New("eioproto: malformed length prefix")
)

// decodeText decodes one text packet "<type digit><data>". data aliases p.
func decodeText(p []byte) (Packet, error) {
	if len(p) == 0 || p[0] < '0' || p[0] > '6' {
		return Packet{}, ErrBadPacket
	}
	return Packet{Type: PacketType(p[0] - '0'), Data: p[1:]}, nil
}

// appendText appends the text form of a non-binary packet.
func appendText(dst []byte, p Packet) []byte {
	dst = append(dst, '0'+byte(p.Type))
	return append(dst, p.Data...)
}

// DecodeFrame decodes one WebSocket message of Engine.IO revision eio (3 or 4). v4 binary frames
// are raw message bytes; v3 binary frames start with the packet type byte. Data aliases msg.
func DecodeFrame(eio int, binary bool, msg []byte) (Packet, error) {
	if !binary {
		return decodeText(msg)
	}
	if eio == 3 {
		if len(msg) == 0 || msg[0] > 6 {
			return Packet{}, ErrBadPacket
		}
		return Packet{Type: PacketType(msg[0]), Data: msg[1:], Binary: true}, nil
	}
	return Packet{Type: PacketMessage, Data: msg, Binary: true}, nil
}

// AppendFrame appends the WebSocket message body of p and reports whether it is binary.
func AppendFrame(dst []byte, eio int, p Packet) ([]byte, bool) {
	if !p.Binary {
		return appendText(dst, p), false
	}
	if eio == 3 {
		dst = append(dst, byte(p.Type))
	}
	return append(dst, p.Data...), true
}
