package eioproto

import (
	"errors"
	"testing"
)

func TestDecodePayloadV4(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Packet
		err  error
	}{
		{"open", `0{"sid":"x"}`, []Packet{txt(PacketOpen, `{"sid":"x"}`)}, nil},
		{"several", "4hello\x1e2\x1e4world", []Packet{txt(PacketMessage, "hello"), txt(PacketPing, ""), txt(PacketMessage, "world")}, nil},
		{"non-ASCII is not counted", "4€", []Packet{txt(PacketMessage, "€")}, nil},
		{"binary", "bAQIDBA==", []Packet{bin(PacketMessage, 1, 2, 3, 4)}, nil},
		{"binary after text", "451-[\"x\",{}]\x1ebAQ==", []Packet{txt(PacketMessage, `51-["x",{}]`), bin(PacketMessage, 1)}, nil},
		{"empty binary", "b", []Packet{bin(PacketMessage)}, nil},
		{"empty body", "", nil, ErrEmptyPayload},
		{"empty record", "4a\x1e", nil, ErrBadPacket},
		{"bad type", "7x", nil, ErrBadPacket},
		{"bad base64", "b!!", nil, ErrBadPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePayloadV4([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !samePackets(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestScanPayloadV4 checks that fn sees each packet before the first error, that binary data
// lands in the reused scratch buffer, and that fn can stop the scan.
func TestScanPayloadV4(t *testing.T) {
	tests := []struct {
		name string
		in   string
		stop int // fn returns false on this packet (1-based); 0: never
		want []Packet
		err  error
	}{
		{"one", "4hello", 0, []Packet{txt(PacketMessage, "hello")}, nil},
		{"several", "4hello\x1e2\x1e4world", 0, []Packet{txt(PacketMessage, "hello"), txt(PacketPing, ""), txt(PacketMessage, "world")}, nil},
		{"utf8", "4€", 0, []Packet{txt(PacketMessage, "€")}, nil},
		{"two binaries share scratch", "bAQIDBA==\x1ebBQY=", 0, []Packet{bin(PacketMessage, 1, 2, 3, 4), bin(PacketMessage, 5, 6)}, nil},
		{"stop", "4a\x1e1\x1e4b", 2, []Packet{txt(PacketMessage, "a"), txt(PacketClose, "")}, nil},
		{"empty", "", 0, nil, ErrEmptyPayload},
		{"trailing separator", "4a\x1e", 0, []Packet{txt(PacketMessage, "a")}, ErrBadPacket},
		{"bad type", "7x", 0, nil, ErrBadPacket},
		{"bad base64 after a packet", "2\x1eb@@", 0, []Packet{txt(PacketPing, "")}, ErrBadPacket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Packet
			scratch := make([]byte, 0, 8)
			out, err := ScanPayloadV4([]byte(tt.in), scratch, func(p Packet) bool {
				if p.Binary && &p.Data[:1][0] != &scratch[:1][0] {
					t.Errorf("binary data %v not decoded into scratch", p.Data)
				}
				got = append(got, Packet{Type: p.Type, Binary: p.Binary, Data: append([]byte{}, p.Data...)})
				return len(got) != tt.stop
			})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !samePackets(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if cap(out) != cap(scratch) {
				t.Fatalf("scratch of cap %d returned as cap %d", cap(scratch), cap(out))
			}
		})
	}
	out, err := ScanPayloadV4([]byte("bAQIDBAUGBwgJCgsM"), nil, func(Packet) bool { return true })
	if err != nil || cap(out) < 12 {
		t.Fatalf("nil scratch: cap %d, err %v; want a grown buffer", cap(out), err)
	}
}

func TestAppendPayloadV4(t *testing.T) {
	got := AppendPayloadV4(nil, []Packet{txt(PacketMessage, "hello"), txt(PacketPing, ""), bin(PacketMessage, 1, 2, 3, 4)})
	if want := "4hello\x1e2\x1ebAQIDBA=="; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDecodePayloadV3(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Packet
		err  error
	}{
		{"handshake with connect", `14:0{"sid":"abc"}2:40`, []Packet{txt(PacketOpen, `{"sid":"abc"}`), txt(PacketMessage, "0")}, nil},
		{"two messages", "6:4hello6:4world", []Packet{txt(PacketMessage, "hello"), txt(PacketMessage, "world")}, nil},
		{"BMP char is one unit", "2:4€", []Packet{txt(PacketMessage, "€")}, nil},
		{"astral char is two units", "3:4😀1:6", []Packet{txt(PacketMessage, "😀"), txt(PacketNoop, "")}, nil},
		{"binary record", "10:b4AQIDBA==", []Packet{bin(PacketMessage, 1, 2, 3, 4)}, nil},
		{"empty payload", "0:", nil, nil},
		{"XHR2 binary framing", "\x00\x02\xff40\x01\x05\xff\x04\x01\x02\x03\x04", []Packet{txt(PacketMessage, "0"), bin(PacketMessage, 1, 2, 3, 4)}, nil},
		{"XHR2 string counts bytes", "\x00\x04\xff4€", []Packet{txt(PacketMessage, "€")}, nil},
		{"empty body", "", nil, ErrEmptyPayload},
		{"no colon", "12", nil, ErrBadLength},
		{"length too long", "9:4ab", nil, ErrBadLength},
		{"length splits a surrogate pair", "2:4😀", nil, ErrBadLength},
		{"non-digit length", "a:4", nil, ErrBadLength},
		{"huge length", "12345678901:4", nil, ErrBadLength},
		{"bad type", "2:9x", nil, ErrBadPacket},
		{"bad binary type", "3:b9A", nil, ErrBadPacket},
		{"XHR2 missing 0xFF", "\x00\x02", nil, ErrBadLength},
		{"XHR2 short body", "\x00\x09\xff40", nil, ErrBadLength},
		{"XHR2 bad digit", "\x00\x0a\xff4", nil, ErrBadLength},
		{"XHR2 no digits", "\x00\xff4", nil, ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePayloadV3([]byte(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !samePackets(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestAppendPayloadV3(t *testing.T) {
	tests := []struct {
		name string
		in   []Packet
		want string
	}{
		{"ascii", []Packet{txt(PacketMessage, "hello"), txt(PacketPing, "")}, "6:4hello1:2"},
		{"BMP", []Packet{txt(PacketMessage, "€")}, "2:4€"},
		{"astral", []Packet{txt(PacketMessage, "a😀")}, "4:4a😀"},
		{"binary", []Packet{bin(PacketMessage, 1, 2, 3, 4)}, "10:b4AQIDBA=="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendPayloadV3(nil, tt.in); string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppendDecodePayloadKeepsPrefix(t *testing.T) {
	tests := []struct {
		name string
		v3   bool
		dst  []Packet
		body string
		want []Packet
		err  error
	}{
		{"v4 empty body", false, nil, "", nil, nil},
		{"v4 appends to dst", false, []Packet{txt(PacketNoop, "")}, "4a\x1e2", []Packet{txt(PacketNoop, ""), txt(PacketMessage, "a"), txt(PacketPing, "")}, nil},
		{"v4 bad type after a good packet", false, nil, "4a\x1e9x\x1e4b", []Packet{txt(PacketMessage, "a")}, ErrBadPacket},
		{"v4 bad base64 after a good packet", false, nil, "4a\x1eb!!", []Packet{txt(PacketMessage, "a")}, ErrBadPacket},
		{"v4 trailing separator", false, nil, "4a\x1e", []Packet{txt(PacketMessage, "a")}, ErrBadPacket},
		{"v3 empty body", true, nil, "", nil, nil},
		{"v3 short record after a good one", true, nil, "2:4a9:4b", []Packet{txt(PacketMessage, "a")}, ErrBadLength},
		{"v3 bad type after a good one", true, nil, "2:4a2:9b", []Packet{txt(PacketMessage, "a")}, ErrBadPacket},
		{"v3 xhr2 truncated after a good one", true, nil, "\x00\x02\xff4a\x00\x09\xff4", []Packet{txt(PacketMessage, "a")}, ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			decode := AppendDecodePayloadV4
			if tt.v3 {
				decode = AppendDecodePayloadV3
			}
			got, err := decode(tt.dst, []byte(tt.body))
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !samePackets(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBinaryPayloadV3RoundTrip(t *testing.T) {
	in := []Packet{txt(PacketMessage, "51-[\"€\",{}]"), bin(PacketMessage, 0, 255, 7), txt(PacketNoop, "")}
	enc := AppendBinaryPayloadV3(nil, in)
	got, err := DecodePayloadV3(enc)
	if err != nil || !samePackets(got, in) {
		t.Fatalf("decode(%q) = %+v, %v; want %+v", enc, got, err, in)
	}
}

func TestUTF16Len(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0}, {"abc", 3}, {"é", 1}, {"€", 1}, {"😀", 2}, {"a😀b", 4}, {"\xff", 1}, {"\xe2\x82", 1}, // a truncated sequence decodes to one U+FFFD (WHATWG)
	}
	for _, tt := range tests {
		if got := UTF16Len([]byte(tt.in)); got != tt.want {
			t.Errorf("UTF16Len(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// UTF-16 lengths follow what a browser or Node decodes, invalid UTF-8 included (WHATWG: one U+FFFD
// per maximal subpart).
func TestUTF16LenWHATWG(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"abc", 3}, {"é", 1}, {"€", 1}, {"😀", 2},
		{"\xe2\x82", 1},              // a truncated 3-byte sequence: one replacement
		{"\xe2\x82\"", 2},            // ...then the quote
		{"\xf0\x9f", 1},              // a truncated 4-byte sequence
		{"\xf0\x9f\x98", 1},          // three of four bytes
		{"\xff", 1}, {"\x80\x80", 2}, // never-valid bytes, one each
		{"\xed\xa0\x80", 3},   // an encoded surrogate: ED then A0 is out of range: three replacements
		{"\xc0\xaf", 2},       // an overlong form
		{"a\xe2\x82\xacb", 3}, // a valid euro between letters
	}
	for _, tt := range tests {
		if got := UTF16Len([]byte(tt.in)); got != tt.want {
			t.Errorf("UTF16Len(%q) = %d, want %d", tt.in, got, tt.want)
		}
		if n := UTF16Prefix([]byte(tt.in), tt.want); n != len(tt.in) {
			t.Errorf("UTF16Prefix(%q, %d) = %d, want %d", tt.in, tt.want, n, len(tt.in))
		}
	}
}
