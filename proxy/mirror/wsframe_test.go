package mirror

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// frame builds one WebSocket frame; a non-nil mask masks the payload.
func frame(fin bool, op byte, payload []byte, mask []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	mbit := byte(0)
	if mask != nil {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, mbit|byte(n))
	case n <= 0xffff:
		out = append(out, mbit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if mask == nil {
		return append(out, payload...)
	}
	out = append(out, mask...)
	for i, c := range payload {
		out = append(out, c^mask[i&3])
	}
	return out
}

type msg struct {
	op   byte
	data string
}

func collect(t *testing.T, stream []byte, chunk int) ([]msg, error) {
	t.Helper()
	var got []msg
	f := FrameParser{OnMessage: func(op byte, p []byte) { got = append(got, msg{op, string(p)}) }}
	var err error
	for len(stream) > 0 && err == nil {
		n := min(chunk, len(stream))
		err = f.Feed(stream[:n])
		stream = stream[n:]
	}
	return got, err
}

func TestFrameParser(t *testing.T) {
	mask := []byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte("x"), 70000)
	mid := bytes.Repeat([]byte("y"), 300)
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	tests := []struct {
		name   string
		stream []byte
		want   []msg
		err    error
	}{
		{"unmasked text", frame(true, OpText, []byte("42[\"a\"]"), nil), []msg{{OpText, `42["a"]`}}, nil},
		{"masked text", frame(true, OpText, []byte("2probe"), mask), []msg{{OpText, "2probe"}}, nil},
		{"16-bit length", frame(true, OpBinary, mid, mask), []msg{{OpBinary, string(mid)}}, nil},
		{"64-bit length", frame(true, OpBinary, big, nil), []msg{{OpBinary, string(big)}}, nil},
		{"empty message", frame(true, OpText, nil, mask), []msg{{OpText, ""}}, nil},
		{"fragmented with control in between", cat(
			frame(false, OpText, []byte("4hel"), mask),
			frame(true, OpPing, []byte("p"), mask),
			frame(false, OpContinuation, []byte("lo "), []byte{9, 8, 7, 6}),
			frame(true, OpContinuation, []byte("world"), mask),
		), []msg{{OpPing, "p"}, {OpText, "4hello world"}}, nil},
		{"several messages", cat(frame(true, OpText, []byte("3"), nil), frame(true, OpBinary, []byte{0, 1}, nil), frame(true, OpClose, []byte{3, 232}, nil)),
			[]msg{{OpText, "3"}, {OpBinary, "\x00\x01"}, {OpClose, "\x03\xe8"}}, nil},
		{"continuation without start", frame(true, OpContinuation, []byte("x"), nil), nil, ErrBadContinue},
		{"text inside fragmented text", cat(frame(false, OpText, []byte("a"), nil), frame(true, OpText, []byte("b"), nil)), nil, ErrBadContinue},
		{"reserved opcode", frame(true, 0x3, nil, nil), nil, ErrBadOpcode},
		{"fragmented control", frame(false, OpPing, nil, nil), nil, ErrBadControl},
		{"compressed", []byte{0xc1, 0x01, 'x'}, nil, ErrCompressed},
		{"huge length", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, nil, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 7, 1 << 20} {
			got, err := collect(t, tt.stream, chunk)
			if !errors.Is(err, tt.err) {
				t.Errorf("%s/chunk %d: err %v, want %v", tt.name, chunk, err, tt.err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("%s/chunk %d: %d messages, want %d", tt.name, chunk, len(got), len(tt.want))
				continue
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("%s/chunk %d: message %d = %v, want %v", tt.name, chunk, i, got[i], tt.want[i])
				}
			}
		}
	}
}

func TestFrameParserLimit(t *testing.T) {
	f := FrameParser{MaxMessage: 10}
	err := f.Feed(append(frame(false, OpText, []byte("123456"), nil), frame(true, OpContinuation, []byte("7890x"), nil)...))
	if !errors.Is(err, ErrMessageTooLong) {
		t.Fatalf("err %v, want ErrMessageTooLong", err)
	}
	if f.Feed(frame(true, OpText, []byte("a"), nil)) == nil || f.Messages() != 0 {
		t.Fatalf("a failed parser must stay failed and deliver nothing")
	}
}

func FuzzFrameParser(f *testing.F) {
	f.Add(frame(true, OpText, []byte("42[\"a\"]"), []byte{1, 2, 3, 4}), uint8(3))
	f.Add(append(frame(false, OpText, []byte("4a"), nil), frame(true, OpContinuation, []byte("b"), nil)...), uint8(1))
	f.Add(frame(true, OpBinary, bytes.Repeat([]byte{7}, 200), []byte{9, 9, 9, 9}), uint8(50))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		c := int(chunk%64) + 1
		whole, errWhole := collect(t, stream, len(stream)+1)
		parts, errParts := collect(t, stream, c)
		// Chunking must not change what is parsed.
		if (errWhole == nil) != (errParts == nil) || len(whole) != len(parts) {
			t.Fatalf("chunk %d: %d msgs err %v; whole: %d msgs err %v", c, len(parts), errParts, len(whole), errWhole)
		}
		for i := range whole {
			if whole[i] != parts[i] {
				t.Fatalf("message %d differs", i)
			}
		}
	})
}
