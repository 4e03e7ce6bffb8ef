package eioproto

import (
	"bytes"
	"encoding/base64"
)

// recordSep separates packets in a v4 polling payload.
const recordSep = 0x1e

// cutRecord splits the first record of a v4 payload off body; more is false for the last one.
func cutRecord(body []byte) (rec, rest []byte, more bool) {
	if i := bytes.IndexByte(body, recordSep); i >= 0 {
		return body[:i], body[i+1:], true
	}
	return body, nil, false
}

// decodeRecordV4 decodes one v4 record: a text packet or "b"+base64 (a binary message). Binary
// data is decoded into buf when it has the capacity, else into a new slice.
func decodeRecordV4(rec, buf []byte) (Packet, error) {
	if len(rec) == 0 || rec[0] != 'b' {
		return decodeText(rec)
	}
	n := base64.StdEncoding.DecodedLen(len(rec) - 1)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	m, err := base64.StdEncoding.Decode(buf[:n], rec[1:])
	if err != nil {
		return Packet{}, ErrBadPacket
	}
	return Packet{Type: PacketMessage, Data: buf[:m], Binary: true}, nil
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
		rec, body, more = cutRecord(body)
		p, err := decodeRecordV4(rec, nil)
		if err != nil {
			return dst, err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

// ScanPayloadV4 decodes the v4 polling payload body as DecodePayloadV4 does, but hands each packet
// to fn as soon as it is decoded, without allocating: binary data is decoded into scratch (grown
// when short, and returned for reuse) and is valid only during fn. It stops at the first malformed
// packet, returning its error after fn saw the packets before it, or when fn returns false. An
// empty body is ErrEmptyPayload.
func ScanPayloadV4(body, scratch []byte, fn func(Packet) bool) ([]byte, error) {
	if len(body) == 0 {
		return scratch, ErrEmptyPayload
	}
	for more := true; more; {
		var rec []byte
		rec, body, more = cutRecord(body)
		p, err := decodeRecordV4(rec, scratch)
		if err != nil {
			return scratch, err
		}
		if p.Binary {
			scratch = p.Data[:0]
		}
		if !fn(p) {
			break
		}
	}
	return scratch, nil
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
