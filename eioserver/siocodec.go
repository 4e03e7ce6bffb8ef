package eioserver

import (
	"encoding/json"
	"errors"
	"strconv"

	"sioproxy/eioproto"
)

// maxAttachments bounds the attachment count a client may announce.
const maxAttachments = 1000

// maxAckID bounds the ack ids a client may use to 15 digits, which JavaScript numbers hold exactly.
const maxAckID = 999_999_999_999_999

var (
	errSIOAttachments = errors.New("eioserver: bad attachment count")
	errSIOID          = errors.New("eioserver: bad ack id")
)

// decodeSIO decodes a Socket.IO packet from a client and applies the server's bounds: a binary
// packet announces 1 to maxAttachments attachments, an ack id is at most maxAckID.
func decodeSIO(b []byte) (eioproto.SocketIOPacket, error) {
	p, err := eioproto.DecodeSocketIO(b)
	switch {
	case err != nil:
		return p, err
	case (p.Type == eioproto.SIOBinaryEvent || p.Type == eioproto.SIOBinaryAck) &&
		(p.Attachments < 1 || p.Attachments > maxAttachments):
		return p, errSIOAttachments
	case p.ID > maxAckID:
		return p, errSIOID
	}
	return p, nil
}

// encodeEvent encodes a server-to-client EVENT (or BINARY_EVENT) as Engine.IO packets: the header
// message, then one binary message per []byte argument.
func encodeEvent(name string, args []any) ([]eioproto.Packet, error) {
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
	return packFrames(eioproto.SIOEvent, eioproto.NoAck, body, atts), nil
}

// encodeAck encodes an ACK (or BINARY_ACK) for ack id with args.
func encodeAck(id int64, args []any) ([]eioproto.Packet, error) {
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
	return packFrames(eioproto.SIOAck, id, body, atts), nil
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

// packFrames builds the Engine.IO packets of a Socket.IO packet of base type typ (SIOEvent or
// SIOAck; the binary variant when there are attachments) on "/", with optional ack id, JSON body
// and binary attachments.
func packFrames(typ int, id int64, body []byte, atts [][]byte) []eioproto.Packet {
	sp := eioproto.SocketIOPacket{Type: typ, Nsp: "/", ID: id, Data: body}
	if len(atts) > 0 {
		sp.Type += eioproto.SIOBinaryEvent - eioproto.SIOEvent
		sp.Attachments = len(atts)
	}
	frames := make([]eioproto.Packet, 0, 1+len(atts))
	frames = append(frames, eioproto.Packet{Type: eioproto.PacketMessage, Data: eioproto.AppendSocketIO(make([]byte, 0, 8+len(body)), sp)})
	for _, a := range atts {
		frames = append(frames, eioproto.Packet{Type: eioproto.PacketMessage, Binary: true, Data: a})
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
