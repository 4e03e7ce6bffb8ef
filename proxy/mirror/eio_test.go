package mirror

import (
	"bytes"
	"testing"
)

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name string
		eio  int
		body []byte
		want []Packet
		err  bool
	}{
		{"v4 single", 4, []byte(`42["a"]`), []Packet{{Type: 4, Data: []byte(`2["a"]`)}}, false},
		{"v4 batch with binary", 4, []byte("4hello\x1e2\x1ebAQIDBA=="), []Packet{
			{Type: 4, Data: []byte("hello")}, {Type: 2, Data: []byte{}}, {Type: 4, Binary: true, Data: []byte{1, 2, 3, 4}}}, false},
		{"v4 bad type", 4, []byte("9x"), nil, true},
		{"v4 bad base64", 4, []byte("b!!"), nil, true},
		{"v3 text", 3, []byte("6:4hello2:40"), []Packet{{Type: 4, Data: []byte("hello")}, {Type: 4, Data: []byte("0")}}, false},
		{"v3 utf-16 lengths", 3, []byte("2:4€3:4😀"), []Packet{{Type: 4, Data: []byte("€")}, {Type: 4, Data: []byte("😀")}}, false},
		{"v3 text binary", 3, []byte("10:b4AQIDBA=="), []Packet{{Type: 4, Binary: true, Data: []byte{1, 2, 3, 4}}}, false},
		{"v3 xhr2 binary framing", 3, []byte{0, 2, 0xff, '4', '0', 1, 5, 0xff, 4, 1, 2, 3, 4}, []Packet{
			{Type: 4, Data: []byte("0")}, {Type: 4, Binary: true, Data: []byte{1, 2, 3, 4}}}, false},
		{"v3 short", 3, []byte("9:4hi"), nil, true},
		{"v3 no colon", 3, []byte("42"), nil, true},
		{"v3 xhr2 truncated", 3, []byte{0, 9, 0xff, '4'}, nil, true},
	}
	for _, tt := range tests {
		got, err := DecodePayload(nil, tt.eio, tt.body)
		if (err != nil) != tt.err {
			t.Errorf("%s: err %v, want error %v", tt.name, err, tt.err)
			continue
		}
		if tt.err {
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %d packets %v, want %d", tt.name, len(got), got, len(tt.want))
			continue
		}
		for i := range got {
			if got[i].Type != tt.want[i].Type || got[i].Binary != tt.want[i].Binary || !bytes.Equal(got[i].Data, tt.want[i].Data) {
				t.Errorf("%s: packet %d = %+v, want %+v", tt.name, i, got[i], tt.want[i])
			}
		}
	}
}

func TestFrames(t *testing.T) {
	tests := []struct {
		name   string
		eio    int
		p      Packet
		frame  string
		binary bool
	}{
		{"v4 text", 4, Packet{Type: 4, Data: []byte("0")}, "40", false},
		{"v4 binary", 4, Packet{Type: 4, Binary: true, Data: []byte{1, 2}}, "\x01\x02", true},
		{"v3 binary", 3, Packet{Type: 4, Binary: true, Data: []byte{1, 2}}, "\x04\x01\x02", true},
		{"pong", 4, Packet{Type: 3}, "3", false},
	}
	for _, tt := range tests {
		out, bin := AppendFrame(nil, tt.eio, tt.p)
		if string(out) != tt.frame || bin != tt.binary {
			t.Errorf("%s: AppendFrame = %q %v, want %q %v", tt.name, out, bin, tt.frame, tt.binary)
		}
		op := OpText
		if bin {
			op = OpBinary
		}
		back, err := DecodeFrame(tt.eio, op, out)
		if err != nil || back.Type != tt.p.Type || back.Binary != tt.p.Binary || !bytes.Equal(back.Data, tt.p.Data) && len(tt.p.Data) > 0 {
			t.Errorf("%s: DecodeFrame = %+v %v, want %+v", tt.name, back, err, tt.p)
		}
	}
	if _, err := DecodeFrame(3, OpBinary, []byte{2, 1}); err == nil {
		t.Error("v3 binary frame with a non-message type byte must fail")
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte("6:4hello2:40"), true)
	f.Add([]byte{0, 2, 0xff, '4', '0', 1, 5, 0xff, 4, 1, 2, 3, 4}, true)
	f.Add([]byte("4hello\x1e2\x1ebAQIDBA=="), false)
	f.Fuzz(func(t *testing.T, body []byte, v3 bool) {
		eio := 4
		if v3 {
			eio = 3
		}
		pkts, err := DecodePayload(nil, eio, body)
		if err != nil {
			return
		}
		for _, p := range pkts {
			if p.Type > PacketNoop || (p.Binary && p.Type != PacketMessage) {
				t.Fatalf("bad packet %+v", p)
			}
			// A decoded packet re-encodes as a frame that decodes to the same packet.
			out, bin := AppendFrame(nil, eio, p)
			op := OpText
			if bin {
				op = OpBinary
			}
			back, err := DecodeFrame(eio, op, out)
			if err != nil || back.Type != p.Type || back.Binary != p.Binary || !bytes.Equal(back.Data, p.Data) {
				t.Fatalf("round trip %+v -> %+v %v", p, back, err)
			}
		}
	})
}
