package mirror

import (
	"bytes"
	"testing"

	"sioproxy/eioproto"
)

func TestDecodePayload(t *testing.T) {
	msg := func(s string) eioproto.Packet {
		return eioproto.Packet{Type: eioproto.PacketMessage, Data: []byte(s)}
	}
	bin := func(b ...byte) eioproto.Packet {
		return eioproto.Packet{Type: eioproto.PacketMessage, Binary: true, Data: b}
	}
	tests := []struct {
		name string
		eio  int
		body []byte
		want []eioproto.Packet // the packets kept, also on an error
		err  bool
	}{
		{"v4 single", 4, []byte(`42["a"]`), []eioproto.Packet{msg(`2["a"]`)}, false},
		{"v4 batch with binary", 4, []byte("4hello\x1e2\x1ebAQIDBA=="), []eioproto.Packet{
			msg("hello"), {Type: eioproto.PacketPing, Data: []byte{}}, bin(1, 2, 3, 4)}, false},
		{"v4 empty body", 4, nil, nil, false},
		{"v4 bad type", 4, []byte("9x"), nil, true},
		{"v4 bad base64", 4, []byte("b!!"), nil, true},
		{"v4 good packet before a bad one is kept", 4, []byte("4a\x1e9x\x1e4b"), []eioproto.Packet{msg("a")}, true},
		{"v3 text", 3, []byte("6:4hello2:40"), []eioproto.Packet{msg("hello"), msg("0")}, false},
		{"v3 utf-16 lengths", 3, []byte("2:4€3:4😀"), []eioproto.Packet{msg("€"), msg("😀")}, false},
		{"v3 text binary", 3, []byte("10:b4AQIDBA=="), []eioproto.Packet{bin(1, 2, 3, 4)}, false},
		{"v3 xhr2 binary framing", 3, []byte{0, 2, 0xff, '4', '0', 1, 5, 0xff, 4, 1, 2, 3, 4}, []eioproto.Packet{msg("0"), bin(1, 2, 3, 4)}, false},
		{"v3 short", 3, []byte("9:4hi"), nil, true},
		{"v3 no colon", 3, []byte("42"), nil, true},
		{"v3 xhr2 truncated", 3, []byte{0, 9, 0xff, '4'}, nil, true},
		{"v3 good packet before a short one is kept", 3, []byte("2:4a9:4b"), []eioproto.Packet{msg("a")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePayload(nil, tt.eio, tt.body)
			if (err != nil) != tt.err {
				t.Fatalf("err %v, want error %v", err, tt.err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d packets %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i].Type != tt.want[i].Type || got[i].Binary != tt.want[i].Binary || !bytes.Equal(got[i].Data, tt.want[i].Data) {
					t.Errorf("packet %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte("6:4hello2:40"), true)
	f.Add([]byte{0, 2, 0xff, '4', '0', 1, 5, 0xff, 4, 1, 2, 3, 4}, true)
	f.Add([]byte("4hello\x1e2\x1ebAQIDBA=="), false)
	f.Add([]byte("4a\x1e9x"), false)
	f.Fuzz(func(t *testing.T, body []byte, v3 bool) {
		eio := 4
		if v3 {
			eio = 3
		}
		var buf [2]eioproto.Packet
		pkts, _ := decodePayload(buf[:0], eio, body)
		for _, p := range pkts {
			if p.Type > eioproto.PacketNoop || (eio == 4 && p.Binary && p.Type != eioproto.PacketMessage) {
				t.Fatalf("bad packet %+v", p)
			}
			// A decoded packet re-encodes as the frame the shadow writes, which decodes to it again.
			out, binary := eioproto.AppendFrame(nil, eio, p)
			back, err := eioproto.DecodeFrame(eio, binary, out)
			if err != nil || back.Type != p.Type || back.Binary != p.Binary || !bytes.Equal(back.Data, p.Data) {
				t.Fatalf("round trip %+v -> %+v %v", p, back, err)
			}
		}
	})
}
