package eioclient

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"unicode/utf8"
)

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

// Packet is one Engine.IO packet. A binary packet is always a message; its Data is the raw bytes.
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool
}

// recordSep separates packets in a v4 polling payload.
const recordSep = 0x1e

// Framing errors.
var (
	ErrEmptyPayload = errors.New("eioclient: empty payload")
	ErrBadPacket    = errors.New("eioclient: malformed packet")
	ErrBadLength    = errors.New("eioclient: malformed length prefix")
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

// DecodePayloadV4 decodes a v4 polling payload: packets separated by 0x1e, binary messages as
// "b"+base64. Text packet data aliases body; binary data is freshly allocated.
func DecodePayloadV4(body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return nil, ErrEmptyPayload
	}
	pkts, err := AppendDecodePayloadV4(make([]Packet, 0, 1+bytes.Count(body, []byte{recordSep})), body)
	if err != nil {
		return nil, err
	}
	return pkts, nil
}

// AppendDecodePayloadV4 appends the packets of the v4 polling payload body to dst, decoded as by
// DecodePayloadV4, except that it keeps what it decoded: on a malformed packet it returns dst with
// the packets before it and the error, and an empty body adds nothing. It suits a passive observer
// (an engine.io server, too, acts on the packets before a malformed one).
func AppendDecodePayloadV4(dst []Packet, body []byte) ([]Packet, error) {
	for more := len(body) > 0; more; {
		var rec []byte
		if i := bytes.IndexByte(body, recordSep); i >= 0 {
			rec, body = body[:i], body[i+1:]
		} else {
			rec, more = body, false
		}
		if len(rec) > 0 && rec[0] == 'b' {
			data, err := base64.StdEncoding.DecodeString(string(rec[1:]))
			if err != nil {
				return dst, ErrBadPacket
			}
			dst = append(dst, Packet{Type: PacketMessage, Data: data, Binary: true})
			continue
		}
		p, err := decodeText(rec)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

// AppendPayloadV4 appends the v4 polling encoding of pkts to dst.
func AppendPayloadV4(dst []byte, pkts []Packet) []byte {
	for i, p := range pkts {
		if i > 0 {
			dst = append(dst, recordSep)
		}
		if p.Binary {
			dst = append(dst, 'b')
			dst = base64.StdEncoding.AppendEncode(dst, p.Data)
			continue
		}
		dst = appendText(dst, p)
	}
	return dst
}

// utf16Len returns the length of s in UTF-16 code units, as JavaScript's String.length counts it.
// An invalid UTF-8 byte counts as one unit (it decodes to U+FFFD).
func utf16Len(s []byte) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			n++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		i += size
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// utf16Prefix returns the number of bytes of s that hold its first n UTF-16 code units, or -1 if
// s is shorter or n ends inside a surrogate pair.
func utf16Prefix(s []byte, n int) int {
	i := 0
	for n > 0 {
		if i >= len(s) {
			return -1
		}
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			n--
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		units := 1
		if r >= 0x10000 {
			units = 2
		}
		if units > n {
			return -1
		}
		i += size
		n -= units
	}
	return i
}

// maxLenDigits bounds a length prefix: no payload this client accepts has a 10-digit length.
const maxLenDigits = 9

// DecodePayloadV3 decodes a v3 polling payload. Text framing ("<len>:<packet>" with len counted
// in UTF-16 code units, binary packets as "b4"+base64) is used unless the body starts with 0x00
// or 0x01, which marks XHR2 binary framing. Text packet data aliases body.
func DecodePayloadV3(body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return nil, ErrEmptyPayload
	}
	pkts, err := AppendDecodePayloadV3(nil, body)
	if err != nil {
		return nil, err
	}
	return pkts, nil
}

// AppendDecodePayloadV3 appends the packets of the v3 polling payload body to dst, decoded as by
// DecodePayloadV3, except that it keeps what it decoded: on a malformed packet or length it returns
// dst with the packets before it and the error, and an empty body adds nothing.
func AppendDecodePayloadV3(dst []Packet, body []byte) ([]Packet, error) {
	if len(body) > 0 && (body[0] == 0 || body[0] == 1) {
		return appendDecodeBinaryPayloadV3(dst, body)
	}
	for len(body) > 0 {
		colon := bytes.IndexByte(body, ':')
		if colon <= 0 || colon > maxLenDigits {
			return dst, ErrBadLength
		}
		n, err := strconv.Atoi(string(body[:colon]))
		if err != nil || n < 0 {
			return dst, ErrBadLength
		}
		body = body[colon+1:]
		end := utf16Prefix(body, n)
		if end < 0 {
			return dst, ErrBadLength
		}
		rec := body[:end]
		body = body[end:]
		if len(rec) == 0 {
			continue // "0:" is how v3 encodes an empty payload
		}
		p, err := decodeRecordV3(rec)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

// decodeRecordV3 decodes one v3 text record: a text packet or "b<type>"+base64.
func decodeRecordV3(rec []byte) (Packet, error) {
	if rec[0] != 'b' {
		return decodeText(rec)
	}
	if len(rec) < 2 || rec[1] < '0' || rec[1] > '6' {
		return Packet{}, ErrBadPacket
	}
	data, err := base64.StdEncoding.DecodeString(string(rec[2:]))
	if err != nil {
		return Packet{}, ErrBadPacket
	}
	return Packet{Type: PacketType(rec[1] - '0'), Data: data, Binary: true}, nil
}

// appendDecodeBinaryPayloadV3 appends the packets of XHR2 binary framing to dst: per packet a kind
// byte (0 string, 1 binary), the decimal length one byte per digit, 0xFF, then the packet (for
// binary: type byte + data). On an error dst keeps the packets before it.
func appendDecodeBinaryPayloadV3(dst []Packet, body []byte) ([]Packet, error) {
	for len(body) > 0 {
		kind := body[0]
		if kind > 1 {
			return dst, ErrBadLength
		}
		n, i := 0, 1
		for ; i < len(body) && body[i] != 0xFF; i++ {
			if body[i] > 9 || i > maxLenDigits {
				return dst, ErrBadLength
			}
			n = n*10 + int(body[i])
		}
		if i == 1 || i >= len(body) || len(body)-i-1 < n {
			return dst, ErrBadLength
		}
		rec := body[i+1 : i+1+n]
		body = body[i+1+n:]
		if kind == 0 {
			if len(rec) == 0 {
				continue
			}
			p, err := decodeText(rec)
			if err != nil {
				return dst, err
			}
			dst = append(dst, p)
			continue
		}
		if len(rec) == 0 || rec[0] > 6 {
			return dst, ErrBadPacket
		}
		dst = append(dst, Packet{Type: PacketType(rec[0]), Data: rec[1:], Binary: true})
	}
	return dst, nil
}

// AppendPayloadV3 appends the v3 text-framed encoding of pkts to dst: binary packets as
// "b4"+base64, every record prefixed by its length in UTF-16 code units and ':'.
func AppendPayloadV3(dst []byte, pkts []Packet) []byte {
	for _, p := range pkts {
		if p.Binary {
			n := 2 + base64.StdEncoding.EncodedLen(len(p.Data))
			dst = strconv.AppendInt(dst, int64(n), 10)
			dst = append(dst, ':', 'b', '0'+byte(p.Type))
			dst = base64.StdEncoding.AppendEncode(dst, p.Data)
			continue
		}
		dst = strconv.AppendInt(dst, int64(1+utf16Len(p.Data)), 10)
		dst = append(dst, ':')
		dst = appendText(dst, p)
	}
	return dst
}

// appendBinaryPayloadV3 appends the XHR2 binary framing of pkts to dst (used in tests and by
// servers; this client always POSTs text framing).
func appendBinaryPayloadV3(dst []byte, pkts []Packet) []byte {
	for _, p := range pkts {
		kind := byte(0)
		if p.Binary {
			kind = 1
		}
		dst = append(dst, kind)
		for _, d := range strconv.Itoa(1 + len(p.Data)) {
			dst = append(dst, byte(d-'0'))
		}
		dst = append(dst, 0xFF)
		if p.Binary {
			dst = append(dst, byte(p.Type))
			dst = append(dst, p.Data...)
		} else {
			dst = appendText(dst, p)
		}
	}
	return dst
}

// DecodeFrame decodes one WebSocket message. v4 binary frames are raw message bytes; v3 binary
// frames start with the packet type byte.
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
