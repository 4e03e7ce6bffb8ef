package eioclient

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func txt(t PacketType, s string) Packet { return Packet{Type: t, Data: []byte(s)} }
func bin(t PacketType, b ...byte) Packet {
	return Packet{Type: t, Data: append([]byte{}, b...), Binary: true}
}

// samePackets compares packets treating nil and empty data alike.
func samePackets(a, b []Packet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Binary != b[i].Binary || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

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
	enc := appendBinaryPayloadV3(nil, in)
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
		{"", 0}, {"abc", 3}, {"é", 1}, {"€", 1}, {"😀", 2}, {"a😀b", 4}, {"\xff", 1}, {"\xe2\x82", 2},
	}
	for _, tt := range tests {
		if got := utf16Len([]byte(tt.in)); got != tt.want {
			t.Errorf("utf16Len(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestFrames(t *testing.T) {
	tests := []struct {
		name    string
		eio     int
		p       Packet
		wire    string
		wireBin bool
	}{
		{"v4 text", 4, txt(PacketMessage, "2[\"a\"]"), "42[\"a\"]", false},
		{"v4 binary is raw", 4, bin(PacketMessage, 1, 2), "\x01\x02", true},
		{"v3 binary has a type byte", 3, bin(PacketMessage, 1, 2), "\x04\x01\x02", true},
		{"v3 probe", 3, txt(PacketPing, "probe"), "2probe", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, isBin := AppendFrame(nil, tt.eio, tt.p)
			if string(got) != tt.wire || isBin != tt.wireBin {
				t.Fatalf("AppendFrame = %q %v, want %q %v", got, isBin, tt.wire, tt.wireBin)
			}
			back, err := DecodeFrame(tt.eio, isBin, got)
			if err != nil || !samePackets([]Packet{back}, []Packet{tt.p}) {
				t.Fatalf("DecodeFrame = %+v, %v", back, err)
			}
		})
	}
	if _, err := DecodeFrame(3, true, []byte{9}); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("v3 binary frame with type 9: err = %v", err)
	}
	if _, err := DecodeFrame(4, false, nil); !errors.Is(err, ErrBadPacket) {
		t.Fatalf("empty text frame: err = %v", err)
	}
}

func TestDecodeSocketIO(t *testing.T) {
	tests := []struct {
		in   string
		want SocketIOPacket
		bad  bool
	}{
		{in: "0", want: SocketIOPacket{Type: 0, Nsp: "/", ID: NoAck, Data: []byte{}}},
		{in: `0{"sid":"abc"}`, want: SocketIOPacket{Type: 0, Nsp: "/", ID: NoAck, Data: []byte(`{"sid":"abc"}`)}},
		{in: `0/admin,{"sid":"a"}`, want: SocketIOPacket{Type: 0, Nsp: "/admin", ID: NoAck, Data: []byte(`{"sid":"a"}`)}},
		{in: `2["chat","hi"]`, want: SocketIOPacket{Type: 2, Nsp: "/", ID: NoAck, Data: []byte(`["chat","hi"]`)}},
		{in: `21["chat"]`, want: SocketIOPacket{Type: 2, Nsp: "/", ID: 1, Data: []byte(`["chat"]`)}},
		{in: `3123["ok"]`, want: SocketIOPacket{Type: 3, Nsp: "/", ID: 123, Data: []byte(`["ok"]`)}},
		{in: `51-["up",{"_placeholder":true,"num":0}]`, want: SocketIOPacket{Type: 5, Attachments: 1, Nsp: "/", ID: NoAck, Data: []byte(`["up",{"_placeholder":true,"num":0}]`)}},
		{in: `62-/a,7[1]`, want: SocketIOPacket{Type: 6, Attachments: 2, Nsp: "/a", ID: 7, Data: []byte(`[1]`)}},
		{in: "1/a", want: SocketIOPacket{Type: 1, Nsp: "/a", ID: NoAck, Data: []byte{}}},
		{in: `4{"message":"no"}`, want: SocketIOPacket{Type: 4, Nsp: "/", ID: NoAck, Data: []byte(`{"message":"no"}`)}},
		{in: "", bad: true},
		{in: "9", bad: true},
		{in: "5[]", bad: true},
		{in: "51[]", bad: true},
		{in: "2123456789012345678[]", want: SocketIOPacket{Type: 2, Nsp: "/", ID: 123456789012345678, Data: []byte("[]")}},
		{in: "21234567890123456789[]", bad: true},
		{in: "51234567890123456789-[]", bad: true},
	}
	for _, tt := range tests {
		got, err := DecodeSocketIO([]byte(tt.in))
		if (err != nil) != tt.bad {
			t.Errorf("DecodeSocketIO(%q) err = %v, want bad=%v", tt.in, err, tt.bad)
			continue
		}
		if !tt.bad && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("DecodeSocketIO(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestAppendSocketIO(t *testing.T) {
	tests := []struct {
		p    SocketIOPacket
		want string
	}{
		{SocketIOPacket{Type: 0, Nsp: "/", ID: NoAck}, "0"},
		{SocketIOPacket{Type: 0, Nsp: "/chat", ID: NoAck}, "0/chat,"},
		{SocketIOPacket{Type: 2, Nsp: "/", ID: 12, Data: []byte(`["a"]`)}, `212["a"]`},
		{SocketIOPacket{Type: 5, Attachments: 1, Nsp: "/x", ID: 0, Data: []byte(`[]`)}, `51-/x,0[]`},
	}
	for _, tt := range tests {
		if got := AppendSocketIO(nil, tt.p); string(got) != tt.want {
			t.Errorf("AppendSocketIO(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestEncodeArgs(t *testing.T) {
	tests := []struct {
		name string
		head string
		args []any
		want string
		atts int
	}{
		{"event", "chat", []any{"hi", 1, map[string]bool{"ok": true}}, `["chat","hi",1,{"ok":true}]`, 0},
		{"binary", "up", []any{[]byte{1}, "x", []byte{2}}, `["up",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]`, 2},
		{"ack without head", "", []any{"ok"}, `["ok"]`, 0},
		{"escaped name", "a\"b\n€", nil, `["a\"b\n€"]`, 0},
		{"empty ack", "", nil, `[]`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, atts, err := encodeArgs(nil, tt.head, tt.args)
			if err != nil || string(got) != tt.want || len(atts) != tt.atts {
				t.Fatalf("got %s %d %v, want %s %d", got, len(atts), err, tt.want, tt.atts)
			}
		})
	}
	if _, _, err := encodeArgs(nil, "x", []any{func() {}}); err == nil {
		t.Fatal("unmarshalable argument: no error")
	}
}

func newTestCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
