package eioserver

import (
	"bytes"
	"encoding/base64"
	"errors"
)

// Engine.IO v4 packet types, as their wire characters.
const (
	pktOpen    = '0'
	pktClose   = '1'
	pktPing    = '2'
	pktPong    = '3'
	pktMessage = '4'
	pktUpgrade = '5'
	pktNoop    = '6'
)

// recordSep separates packets in a v4 polling payload.
const recordSep = 0x1e

// frame is one outgoing Engine.IO packet. A text frame holds the type character followed by the
// data; a binary frame holds raw message bytes (Engine.IO v4 binary is always a message). Frame
// bytes are immutable once queued: a broadcast shares them between sessions.
type frame struct {
	binary bool
	data   []byte
}

// inPacket is one incoming Engine.IO packet. For a binary message typ is pktMessage and binary is
// true; data then holds the raw bytes. data may alias the request buffer.
type inPacket struct {
	typ    byte
	binary bool
	data   []byte
}

var (
	errEmptyPacket = errors.New("eioserver: empty packet")
	errBadType     = errors.New("eioserver: unknown packet type")
	errBadBase64   = errors.New("eioserver: bad base64 in binary packet")
)

// decodeTextPacket decodes one v4 text packet: a type character then data.
func decodeTextPacket(p []byte) (inPacket, error) {
	if len(p) == 0 {
		return inPacket{}, errEmptyPacket
	}
	if p[0] < pktOpen || p[0] > pktNoop {
		return inPacket{}, errBadType
	}
	return inPacket{typ: p[0], data: p[1:]}, nil
}

// decodePayload splits a v4 polling payload on 0x1e and decodes each packet, calling fn for each.
// A packet starting with 'b' is a base64 binary message; scratch holds its decoded bytes and is
// returned (grown) for reuse. Decoding stops at the first error or when fn returns false.
func decodePayload(body []byte, scratch []byte, fn func(inPacket) bool) ([]byte, error) {
	if len(body) == 0 {
		return scratch, errEmptyPacket
	}
	for more := true; more; {
		var p []byte
		i := bytes.IndexByte(body, recordSep)
		if i < 0 {
			p, more = body, false
		} else {
			p, body = body[:i], body[i+1:]
		}
		var pkt inPacket
		if len(p) > 0 && p[0] == 'b' {
			n := base64.StdEncoding.DecodedLen(len(p) - 1)
			if cap(scratch) < n {
				scratch = make([]byte, n)
			}
			m, err := base64.StdEncoding.Decode(scratch[:n], p[1:])
			if err != nil {
				return scratch, errBadBase64
			}
			pkt = inPacket{typ: pktMessage, binary: true, data: scratch[:m]}
		} else {
			var err error
			if pkt, err = decodeTextPacket(p); err != nil {
				return scratch, err
			}
		}
		if !fn(pkt) {
			return scratch, nil
		}
	}
	return scratch, nil
}

// appendPayload appends the v4 polling encoding of frames to dst: text frames as is, binary frames
// as 'b' + base64, separated by 0x1e.
func appendPayload(dst []byte, frames []frame) []byte {
	for i, f := range frames {
		if i > 0 {
			dst = append(dst, recordSep)
		}
		if f.binary {
			dst = append(dst, 'b')
			dst = base64.StdEncoding.AppendEncode(dst, f.data)
		} else {
			dst = append(dst, f.data...)
		}
	}
	return dst
}

// textFrame returns a text frame of type typ with data.
func textFrame(typ byte, data string) frame {
	b := make([]byte, 0, 1+len(data))
	b = append(b, typ)
	b = append(b, data...)
	return frame{data: b}
}

var (
	framePing  = frame{data: []byte{pktPing}}
	frameNoop  = frame{data: []byte{pktNoop}}
	frameClose = frame{data: []byte{pktClose}}
)
