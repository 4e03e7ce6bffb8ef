package eioproto

import (
	"encoding/base64"
	"strconv"
)

// maxLenDigits bounds a length prefix: no payload a peer accepts has a 10-digit length.
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
	for off := 0; off < len(body); {
		r, ok := NextV3Text(body, off)
		if !ok {
			return dst, ErrBadLength
		}
		rec := body[r.Start:r.End]
		off = r.End
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
	for off := 0; off < len(body); {
		r, ok := NextV3Binary(body, off)
		if !ok {
			return dst, ErrBadLength
		}
		rec := body[r.Start:r.End]
		off = r.End
		if !r.Binary {
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
// "b<type>"+base64, every record prefixed by its length in UTF-16 code units and ':'.
func AppendPayloadV3(dst []byte, pkts []Packet) []byte {
	for _, p := range pkts {
		if p.Binary {
			n := 2 + base64.StdEncoding.EncodedLen(len(p.Data))
			dst = strconv.AppendInt(dst, int64(n), 10)
			dst = append(dst, ':', 'b', '0'+byte(p.Type))
			dst = base64.StdEncoding.AppendEncode(dst, p.Data)
			continue
		}
		dst = strconv.AppendInt(dst, int64(1+UTF16Len(p.Data)), 10)
		dst = append(dst, ':')
		dst = appendText(dst, p)
	}
	return dst
}

// AppendBinaryPayloadV3 appends the v3 XHR2 binary framing of pkts to dst, as a v3 server answers
// a client that supports binary (see DecodePayloadV3).
func AppendBinaryPayloadV3(dst []byte, pkts []Packet) []byte {
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
