package mirror

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"testing"
)

// compressor is one side's permessage-deflate compressor (RFC 7692 §7.2.1): a flate writer flushed
// after each message, the trailing 00 00 FF FF removed; with takeover one writer serves the whole
// connection.
type compressor struct {
	takeover bool
	buf      bytes.Buffer
	w        *flate.Writer
}

func (c *compressor) message(p []byte) []byte {
	if c.w == nil || !c.takeover {
		c.buf.Reset()
		c.w, _ = flate.NewWriter(&c.buf, flate.BestSpeed)
	}
	start := c.buf.Len()
	c.w.Write(p)
	c.w.Flush()
	out := bytes.Clone(c.buf.Bytes()[start:])
	return bytes.TrimSuffix(out, []byte{0x00, 0x00, 0xff, 0xff})
}

// zframe is a (masked) frame of a compressed message: RSV1 set.
func zframe(op byte, payload, mask []byte) []byte {
	f := frame(true, op, payload, mask)
	f[0] |= 0x40
	return f
}

func TestParserInflatesPermessageDeflate(t *testing.T) {
	msgs := []string{
		`42["chat","hello hello hello hello"]`,
		`42["chat","hello hello hello hello again"]`, // refers back to the first with takeover
		`3`,
		`42["big",` + fmt.Sprintf("%q", bytes.Repeat([]byte("abcdefgh"), 9000)) + `]`, // over the 32 KiB window
		`42["after the big one","hello hello"]`,
	}
	for _, takeover := range []bool{true, false} {
		ext := "permessage-deflate"
		if !takeover {
			ext += "; client_no_context_takeover; server_no_context_takeover"
		}
		client, server := deflateParams(ext)
		if client == nil || server == nil || client.noTakeover == takeover {
			t.Fatalf("%q: params %+v %+v", ext, client, server)
		}
		var got []string
		f := FrameParser{Deflate: client, OnMessage: func(op byte, p []byte) { got = append(got, string(p)) }}
		c := compressor{takeover: takeover}
		var stream []byte
		for i, m := range msgs {
			if i == 2 {
				stream = append(stream, frame(true, OpText, []byte(m), []byte{1, 2, 3, 4})...) // sent uncompressed
				continue
			}
			stream = append(stream, zframe(OpText, c.message([]byte(m)), []byte{1, 2, 3, 4})...)
		}
		for len(stream) > 0 {
			n := min(5, len(stream))
			if err := f.Feed(stream[:n]); err != nil {
				t.Fatalf("takeover %v: %v", takeover, err)
			}
			stream = stream[n:]
		}
		if len(got) != len(msgs) {
			t.Fatalf("takeover %v: %d messages, want %d", takeover, len(got), len(msgs))
		}
		for i := range msgs {
			if got[i] != msgs[i] {
				t.Errorf("takeover %v: message %d = %.60q, want %.60q", takeover, i, got[i], msgs[i])
			}
		}
	}
}

func TestParserDeflateErrors(t *testing.T) {
	none, _ := deflateParams("x-webkit-deflate-frame")
	if none != nil {
		t.Fatal("an extension other than permessage-deflate was taken for it")
	}
	z, _ := deflateParams("permessage-deflate; client_max_window_bits=10")
	tests := []struct {
		name   string
		stream []byte
		err    error
	}{
		{"not negotiated", []byte{0xc1, 0x01, 'x'}, ErrCompressed},
		{"garbage", zframe(OpText, []byte{0xff, 0xff, 0xff}, nil), ErrBadDeflate},
		{"compressed control frame", []byte{0xc9, 0x00}, ErrCompressed},
		{"bomb over the limit", zframe(OpText, (&compressor{}).message(bytes.Repeat([]byte{'a'}, 1<<20)), nil), ErrMessageTooLong},
	}
	for _, tt := range tests {
		f := FrameParser{MaxMessage: 64 << 10, OnMessage: func(byte, []byte) {}}
		if tt.name != "not negotiated" {
			f.Deflate = z
		}
		if err := f.Feed(tt.stream); !errors.Is(err, tt.err) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.err)
		}
	}
}

// FuzzInflateMessages: any stream of (compressed or not) frames, fed in any chunking to a parser
// that negotiated permessage-deflate, never panics, never delivers more than the limit, and
// chunking does not change what it delivers.
func FuzzInflateMessages(f *testing.F) {
	c := compressor{takeover: true}
	f.Add(append(zframe(OpText, c.message([]byte("42[\"a\"]")), nil), zframe(OpText, c.message([]byte("42[\"a\",1]")), []byte{1, 2, 3, 4})...), uint8(3))
	f.Add(zframe(OpBinary, []byte{0x4b, 0x04, 0x00}, nil), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		run := func(n int) ([]string, error) {
			z, _ := deflateParams("permessage-deflate")
			var got []string
			p := FrameParser{MaxMessage: 4096, Deflate: z, OnMessage: func(op byte, m []byte) {
				if len(m) > 4096 {
					t.Fatalf("delivered %d bytes over the 4096 limit", len(m))
				}
				got = append(got, string(m))
			}}
			var err error
			for s := stream; len(s) > 0 && err == nil; {
				k := min(n, len(s))
				err = p.Feed(s[:k])
				s = s[k:]
			}
			return got, err
		}
		whole, errW := run(len(stream) + 1)
		parts, errP := run(int(chunk%32) + 1)
		if (errW == nil) != (errP == nil) || len(whole) != len(parts) {
			t.Fatalf("chunking changed the result: %d msgs %v vs %d msgs %v", len(whole), errW, len(parts), errP)
		}
		for i := range whole {
			if whole[i] != parts[i] {
				t.Fatalf("message %d differs with chunking", i)
			}
		}
	})
}
