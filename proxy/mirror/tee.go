package mirror

import "sioproxy/eioproto"

// tee receives the raw bytes of a mirrored WebSocket tunnel (proxy.MirrorTunnel): one frame parser
// per direction reassembles messages, which are decoded as Engine.IO packets and queued.
type tee struct {
	s      *session
	owns   bool // a WebSocket-only session: the tunnel is the whole session
	client FrameParser
	server FrameParser
}

// newTee builds the tee of a tunnel; extensions is what the backend accepted in its 101
// (permessage-deflate: compressed messages are inflated before they are read).
func newTee(s *session, owns bool, extensions []byte) *tee {
	t := &tee{s: s, owns: owns}
	t.client.MaxMessage = maxShadowMessage
	t.server.MaxMessage = maxShadowMessage
	t.client.Deflate, t.server.Deflate = deflateParams(string(extensions))
	t.client.OnMessage = func(op byte, msg []byte) { t.message(false, op, msg) }
	t.server.OnMessage = func(op byte, msg []byte) { t.message(true, op, msg) }
	return t
}

// FromClient implements proxy.MirrorTunnel.
func (t *tee) FromClient(p []byte) {
	if t.s.failed.Load() {
		t.s.m.stats.packetsDropped.Add(1) // the shadow is gone: counted, not parsed
		return
	}
	if t.client.Err() == nil && t.client.Feed(p) != nil {
		t.s.m.stats.decodeErrors.Add(1)
	}
}

// FromServer implements proxy.MirrorTunnel.
func (t *tee) FromServer(p []byte) {
	if t.s.failed.Load() {
		return
	}
	if t.server.Err() == nil && t.server.Feed(p) != nil {
		t.s.m.stats.decodeErrors.Add(1)
	}
}

func (t *tee) message(server bool, op byte, msg []byte) {
	if op != OpText && op != OpBinary {
		return // close, ping, pong: WebSocket-level, never replayed
	}
	p, err := eioproto.DecodeFrame(t.s.eio, op == OpBinary, msg)
	if err != nil {
		t.s.m.stats.decodeErrors.Add(1)
		return
	}
	t.s.packet(server, p, t.s.m.now().UnixNano())
}

// Close implements proxy.MirrorTunnel. The session ends with the tunnel when the tunnel carried it
// (WebSocket-only, or an upgrade that completed); a failed upgrade probe leaves polling mirrored.
func (t *tee) Close() {
	if t.owns {
		t.s.close()
		return
	}
	if t.s.upgraded.Load() {
		t.s.m.forget(t.s)
		t.s.close()
	}
}
