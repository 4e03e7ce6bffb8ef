package mirror

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
)

// maxWindow is DEFLATE's largest window: the history a compressed message may refer to.
const maxWindow = 32 << 10

// deflateTail ends a permessage-deflate message for an inflater: the 00 00 FF FF that the sender
// removed (RFC 7692 §7.2.2), then a final empty stored block, so that the reader ends cleanly.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// Inflater inflates the compressed messages of one direction of a WebSocket connection that
// negotiated permessage-deflate. With context takeover (the default), a message may refer to the
// bytes of the compressed messages before it: the inflater keeps the last 32 KiB of that
// direction's output (a message sent uncompressed never went through the compressor: not part of
// its history).
type Inflater struct {
	noTakeover bool   // the sender resets its context for every message
	window     []byte // the last maxWindow bytes inflated (with takeover)
	out        bytes.Buffer
}

// inflate returns the inflated msg (at most limit bytes), valid until the next call.
func (z *Inflater) inflate(msg []byte, limit int) ([]byte, error) {
	var dict []byte
	if !z.noTakeover {
		dict = z.window
	}
	r := flate.NewReaderDict(io.MultiReader(bytes.NewReader(msg), bytes.NewReader(deflateTail)), dict)
	z.out.Reset()
	n, err := z.out.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, ErrBadDeflate
	}
	if n > int64(limit) {
		return nil, ErrMessageTooLong
	}
	out := z.out.Bytes()
	if !z.noTakeover {
		z.window = appendWindow(z.window, out)
	}
	return out, nil
}

// appendWindow appends p to the window w and keeps its last maxWindow bytes.
func appendWindow(w, p []byte) []byte {
	if len(p) >= maxWindow {
		return append(w[:0], p[len(p)-maxWindow:]...)
	}
	if keep := maxWindow - len(p); len(w) > keep {
		w = append(w[:0], w[len(w)-keep:]...)
	}
	return append(w, p...)
}

// deflateParams reads the permessage-deflate extension a server accepted (its
// Sec-WebSocket-Extensions answer) and returns an inflater for each direction, or nils when it is
// not there.
func deflateParams(ext string) (client, server *Inflater) {
	for _, e := range strings.Split(ext, ",") {
		params := strings.Split(e, ";")
		if !strings.EqualFold(strings.TrimSpace(params[0]), "permessage-deflate") {
			continue
		}
		client, server = &Inflater{}, &Inflater{}
		for _, p := range params[1:] {
			name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "client_no_context_takeover":
				client.noTakeover = true
			case "server_no_context_takeover":
				server.noTakeover = true
			}
		}
		return client, server
	}
	return nil, nil
}
