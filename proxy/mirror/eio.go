package mirror

import "sioproxy/eioproto"

// The mirror decodes Engine.IO and Socket.IO with eioproto's codecs. What is its own is the
// tolerance of a passive observer: it never rejects what the primary saw, it keeps the packets it
// could decode and counts the rest as decode errors.

// decodePayload appends the packets of a polling payload of Engine.IO revision eio (3 or 4) to dst.
// On a malformed packet it returns those before it with the error: the primary server, too, acts
// on them before it closes the session.
func decodePayload(dst []eioproto.Packet, eio int, body []byte) ([]eioproto.Packet, error) {
	if eio == 3 {
		return eioproto.AppendDecodePayloadV3(dst, body)
	}
	return eioproto.AppendDecodePayloadV4(dst, body)
}
