package mirror

import (
	"bytes"
	"encoding/base64"
	"errors"
	"unicode/utf8"
)

// Engine.IO packet types.
const (
	PacketOpen    byte = 0
	PacketClose   byte = 1
	PacketPing    byte = 2
	PacketPong    byte = 3
	PacketMessage byte = 4
	PacketUpgrade byte = 5
	PacketNoop    byte = 6
)

// Packet is one Engine.IO packet. Binary packets are always messages; Data holds the raw bytes.
type Packet struct {
	Type   byte
	Binary bool
	Data   []byte
}

// Engine.IO decoding errors.
var (
	ErrEmptyPacket = errors.New("engine.io: empty packet")
	ErrPacketType  = errors.New("engine.io: unknown packet type")
	ErrBadLength   = errors.New("engine.io: bad v3 length prefix")
	ErrBadBase64   = errors.New("engine.io: bad base64 binary packet")
)

const recordSep = 0x1e

// decodeTextPacket reads "<type digit><data>"; data aliases p.
func decodeTextPacket(p []byte) (Packet, error) {
	if len(p) == 0 {
		return Packet{}, ErrEmptyPacket
	}
	t := p[0] - '0'
	if p[0] < '0' || t > PacketNoop {
		return Packet{}, ErrPacketType
	}
	return Packet{Type: t, Data: p[1:]}, nil
}

// DecodePayloadV4 appends the packets of an Engine.IO v4 polling payload ("\x1e"-separated records;
// "b"+base64 for binary). Text data aliases body; binary data is freshly decoded.
func DecodePayloadV4(dst []Packet, body []byte) ([]Packet, error) {
	for len(body) > 0 {
		rec := body
		if i := bytes.IndexByte(body, recordSep); i >= 0 {
			rec, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(rec) > 0 && rec[0] == 'b' {
			data, err := decodeB64(rec[1:])
			if err != nil {
				return dst, err
			}
			dst = append(dst, Packet{Type: PacketMessage, Binary: true, Data: data})
			continue
		}
		p, err := decodeTextPacket(rec)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

func decodeB64(s []byte) ([]byte, error) {
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(out, s)
	if err != nil {
		return nil, ErrBadBase64
	}
	return out[:n], nil
}

// DecodePayloadV3 appends the packets of an Engine.IO v3 polling payload: text framing
// ("<len>:<packet>", lengths in UTF-16 code units, "b4"+base64 for binary) or XHR2 binary framing
// (first byte 0x00 or 0x01).
func DecodePayloadV3(dst []Packet, body []byte) ([]Packet, error) {
	if len(body) > 0 && body[0] <= 1 {
		return decodeBinaryPayloadV3(dst, body)
	}
	for len(body) > 0 {
		i := bytes.IndexByte(body, ':')
		if i <= 0 || i > 10 {
			return dst, ErrBadLength
		}
		n := 0
		for _, c := range body[:i] {
			if c < '0' || c > '9' {
				return dst, ErrBadLength
			}
			n = n*10 + int(c-'0')
		}
		body = body[i+1:]
		end := utf16Prefix(body, n)
		if end < 0 || n == 0 {
			return dst, ErrBadLength
		}
		rec := body[:end]
		body = body[end:]
		if rec[0] == 'b' {
			if len(rec) < 2 || rec[1] != '4' {
				return dst, ErrPacketType
			}
			data, err := decodeB64(rec[2:])
			if err != nil {
				return dst, err
			}
			dst = append(dst, Packet{Type: PacketMessage, Binary: true, Data: data})
			continue
		}
		p, err := decodeTextPacket(rec)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

// utf16Prefix returns the byte length of the first n UTF-16 code units of s, or -1 if s is shorter.
func utf16Prefix(s []byte, n int) int {
	i := 0
	for n > 0 {
		if i >= len(s) {
			return -1
		}
		r, size := utf8.DecodeRune(s[i:])
		units := 1
		if r >= 0x10000 {
			units = 2
		}
		if units > n {
			return -1
		}
		n -= units
		i += size
	}
	return i
}

// decodeBinaryPayloadV3 reads XHR2 binary framing: per packet 0x00 (string) or 0x01 (binary), the
// decimal length one byte per digit, 0xFF, then the packet (binary: type byte, then data).
func decodeBinaryPayloadV3(dst []Packet, body []byte) ([]Packet, error) {
	for len(body) > 0 {
		kind := body[0]
		if kind > 1 {
			return dst, ErrBadLength
		}
		body = body[1:]
		n, digits := 0, 0
		for len(body) > 0 && body[0] != 0xff {
			if body[0] > 9 || digits >= 10 {
				return dst, ErrBadLength
			}
			n = n*10 + int(body[0])
			digits++
			body = body[1:]
		}
		if len(body) == 0 || digits == 0 || n == 0 || n > len(body)-1 {
			return dst, ErrBadLength
		}
		rec := body[1 : 1+n]
		body = body[1+n:]
		if kind == 1 {
			if rec[0] != PacketMessage {
				return dst, ErrPacketType
			}
			dst = append(dst, Packet{Type: PacketMessage, Binary: true, Data: rec[1:]})
			continue
		}
		p, err := decodeTextPacket(rec)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

// DecodePayload decodes a polling payload of Engine.IO revision eio (3 or 4).
func DecodePayload(dst []Packet, eio int, body []byte) ([]Packet, error) {
	if eio == 3 {
		return DecodePayloadV3(dst, body)
	}
	return DecodePayloadV4(dst, body)
}

// DecodeFrame decodes one WebSocket data message of Engine.IO revision eio: a text frame is
// "<type><data>"; a binary frame is a binary message (v3: after a leading type byte 4).
func DecodeFrame(eio int, opcode byte, msg []byte) (Packet, error) {
	if opcode == OpText {
		return decodeTextPacket(msg)
	}
	if eio == 3 {
		if len(msg) == 0 || msg[0] != PacketMessage {
			return Packet{}, ErrPacketType
		}
		return Packet{Type: PacketMessage, Binary: true, Data: msg[1:]}, nil
	}
	return Packet{Type: PacketMessage, Binary: true, Data: msg}, nil
}

// AppendFrame appends the WebSocket message of p for Engine.IO revision eio and reports whether it
// is a binary frame.
func AppendFrame(dst []byte, eio int, p Packet) ([]byte, bool) {
	if p.Binary {
		if eio == 3 {
			dst = append(dst, PacketMessage)
		}
		return append(dst, p.Data...), true
	}
	dst = append(dst, '0'+p.Type)
	return append(dst, p.Data...), false
}
