package eioserver

import (
	"encoding/json"
	"errors"
	"strconv"
)

// Socket.IO v5 packet types, as their wire characters.
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
	sioBinaryEvent  = '5'
	sioBinaryAck    = '6'
)

// maxAttachments bounds the attachment count a client may announce.
const maxAttachments = 1000

// sioPacket is a decoded Socket.IO packet header; data aliases the input.
type sioPacket struct {
	typ         byte
	attachments int
	nsp         string
	id          int64 // -1 when absent
	data        []byte
}

var (
	errSIOEmpty       = errors.New("eioserver: empty socket.io packet")
	errSIOType        = errors.New("eioserver: unknown socket.io packet type")
	errSIOAttachments = errors.New("eioserver: bad attachment count")
	errSIOID          = errors.New("eioserver: bad ack id")
)

// decodeSIO parses `<type>[<attachments>-][<nsp>,][<id>][<JSON>]`.
func decodeSIO(b []byte) (sioPacket, error) {
	if len(b) == 0 {
		return sioPacket{}, errSIOEmpty
	}
	p := sioPacket{typ: b[0], nsp: "/", id: -1}
	if p.typ < sioConnect || p.typ > sioBinaryAck {
		return sioPacket{}, errSIOType
	}
	i := 1
	if p.typ == sioBinaryEvent || p.typ == sioBinaryAck {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start || i >= len(b) || b[i] != '-' || i-start > 4 {
			return sioPacket{}, errSIOAttachments
		}
		n, _ := strconv.Atoi(string(b[start:i]))
		if n < 1 || n > maxAttachments {
			return sioPacket{}, errSIOAttachments
		}
		p.attachments = n
		i++
	}
	if i < len(b) && b[i] == '/' {
		start := i
		for i < len(b) && b[i] != ',' {
			i++
		}
		p.nsp = string(b[start:i])
		if i < len(b) {
			i++ // the comma
		}
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > start {
		if i-start > 15 {
			return sioPacket{}, errSIOID
		}
		p.id, _ = strconv.ParseInt(string(b[start:i]), 10, 64)
	}
	p.data = b[i:]
	return p, nil
}

// encodeEvent encodes a server-to-client EVENT (or BINARY_EVENT) as Engine.IO frames: the header
// message, then one binary frame per []byte argument.
func encodeEvent(name string, args []any) ([]frame, error) {
	body := make([]byte, 0, 64)
	body = append(body, '[')
	body = appendJSONString(body, name)
	var atts [][]byte
	var err error
	for _, a := range args {
		body = append(body, ',')
		if body, atts, err = appendArg(body, atts, a); err != nil {
			return nil, err
		}
	}
	body = append(body, ']')
	return packFrames(sioEvent, -1, body, atts), nil
}

// encodeAck encodes an ACK (or BINARY_ACK) for ack id with args.
func encodeAck(id int64, args []any) ([]frame, error) {
	body := make([]byte, 0, 64)
	body = append(body, '[')
	var atts [][]byte
	var err error
	for i, a := range args {
		if i > 0 {
			body = append(body, ',')
		}
		if body, atts, err = appendArg(body, atts, a); err != nil {
			return nil, err
		}
	}
	body = append(body, ']')
	return packFrames(sioAck, id, body, atts), nil
}

// appendArg appends one argument as JSON: json.RawMessage verbatim, []byte as an attachment
// placeholder (the bytes are copied), anything else through encoding/json.
func appendArg(dst []byte, atts [][]byte, a any) ([]byte, [][]byte, error) {
	switch v := a.(type) {
	case json.RawMessage:
		if len(v) == 0 {
			return append(dst, "null"...), atts, nil
		}
		return append(dst, v...), atts, nil
	case []byte:
		dst = append(dst, `{"_placeholder":true,"num":`...)
		dst = strconv.AppendInt(dst, int64(len(atts)), 10)
		dst = append(dst, '}')
		return dst, append(atts, append([]byte(nil), v...)), nil
	case string:
		return appendJSONString(dst, v), atts, nil
	default:
		q, err := json.Marshal(v)
		return append(dst, q...), atts, err
	}
}

// packFrames builds the Engine.IO frames of a Socket.IO packet of base type typ (sioEvent or
// sioAck) on "/", with optional ack id, JSON body and binary attachments.
func packFrames(typ byte, id int64, body []byte, atts [][]byte) []frame {
	h := make([]byte, 0, 8+len(body))
	h = append(h, pktMessage)
	if len(atts) > 0 {
		h = append(h, typ+3) // '2'->'5', '3'->'6'
		h = strconv.AppendInt(h, int64(len(atts)), 10)
		h = append(h, '-')
	} else {
		h = append(h, typ)
	}
	if id >= 0 {
		h = strconv.AppendInt(h, id, 10)
	}
	h = append(h, body...)
	frames := make([]frame, 0, 1+len(atts))
	frames = append(frames, frame{data: h})
	for _, a := range atts {
		frames = append(frames, frame{binary: true, data: a})
	}
	return frames
}

// appendJSONString appends s as a JSON string; plain ASCII takes a fast path.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
