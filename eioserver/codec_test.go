package eioserver

import (
	"encoding/json"
	"errors"
	"testing"

	"sioproxy/eioproto"
)

// TestDecodeSIO checks the server's bounds on top of eioproto.DecodeSocketIO.
func TestDecodeSIO(t *testing.T) {
	tests := []struct {
		in   string
		want eioproto.SocketIOPacket
		err  error
	}{
		{"0", eioproto.SocketIOPacket{Type: eioproto.SIOConnect, Nsp: "/", ID: eioproto.NoAck}, nil},
		{`212["chat"]`, eioproto.SocketIOPacket{Type: eioproto.SIOEvent, Nsp: "/", ID: 12}, nil},
		{`52-7["up",{"_placeholder":true,"num":0}]`, eioproto.SocketIOPacket{Type: eioproto.SIOBinaryEvent, Attachments: 2, Nsp: "/", ID: 7}, nil},
		{`61000-["x"]`, eioproto.SocketIOPacket{Type: eioproto.SIOBinaryAck, Attachments: 1000, Nsp: "/", ID: eioproto.NoAck}, nil},
		{`2999999999999999["x"]`, eioproto.SocketIOPacket{Type: eioproto.SIOEvent, Nsp: "/", ID: maxAckID}, nil},
		{"", eioproto.SocketIOPacket{}, eioproto.ErrBadPacket},
		{"9", eioproto.SocketIOPacket{}, eioproto.ErrBadPacket},
		{`5["x"]`, eioproto.SocketIOPacket{}, eioproto.ErrBadPacket},
		{`50-["x"]`, eioproto.SocketIOPacket{}, errSIOAttachments},
		{`61001-["x"]`, eioproto.SocketIOPacket{}, errSIOAttachments},
		{`599999-["x"]`, eioproto.SocketIOPacket{}, errSIOAttachments},
		{`21234567890123456["x"]`, eioproto.SocketIOPacket{}, errSIOID},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := decodeSIO([]byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (got.Type != tc.want.Type || got.Attachments != tc.want.Attachments || got.Nsp != tc.want.Nsp || got.ID != tc.want.ID) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name   string
		frames func() ([]eioproto.Packet, error)
		want   []string
	}{
		{"event", func() ([]eioproto.Packet, error) {
			return encodeEvent("chat", []any{"hi", 2, map[string]bool{"ok": true}})
		}, []string{`42["chat","hi",2,{"ok":true}]`}},
		{"escaped name", func() ([]eioproto.Packet, error) { return encodeEvent(`a"<b`, nil) }, []string{`42["a\"\u003cb"]`}},
		{"binary event", func() ([]eioproto.Packet, error) { return encodeEvent("up", []any{[]byte{1}, "x", []byte{2, 3}}) },
			[]string{`452-["up",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]`, "\x01", "\x02\x03"}},
		{"ack", func() ([]eioproto.Packet, error) { return encodeAck(5, []any{"ok"}) }, []string{`435["ok"]`}},
		{"empty ack", func() ([]eioproto.Packet, error) { return encodeAck(0, nil) }, []string{`430[]`}},
		{"binary ack", func() ([]eioproto.Packet, error) { return encodeAck(9, []any{[]byte("z")}) },
			[]string{`461-9[{"_placeholder":true,"num":0}]`, "z"}},
		{"empty binary and nil", func() ([]eioproto.Packet, error) { return encodeEvent("r", []any{[]byte{}, nil}) },
			[]string{`451-["r",{"_placeholder":true,"num":0},null]`, ""}},
		{"raw json", func() ([]eioproto.Packet, error) {
			return encodeEvent("r", []any{json.RawMessage(`{"a":1}`), json.RawMessage(nil)})
		}, []string{`42["r",{"a":1},null]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frames, err := tc.frames()
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) != len(tc.want) {
				t.Fatalf("%d frames, want %d", len(frames), len(tc.want))
			}
			for i, f := range frames {
				wire, binary := eioproto.AppendFrame(nil, 4, f)
				if string(wire) != tc.want[i] || binary != (i > 0) {
					t.Fatalf("frame %d: %q binary=%v, want %q", i, wire, binary, tc.want[i])
				}
			}
		})
	}
	if _, err := encodeEvent("bad", []any{make(chan int)}); err == nil {
		t.Fatal("unencodable argument accepted")
	}
}

// FuzzDecodeSIO checks the server's bounds hold for whatever decodes.
func FuzzDecodeSIO(f *testing.F) {
	for _, s := range []string{"0", `212["chat"]`, `52-7["up",{}]`, "0/admin,", "2/a,1[]", "5-", "6999-", "50-", "21000000000000000"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeSIO(b)
		if err != nil {
			return
		}
		binary := p.Type == eioproto.SIOBinaryEvent || p.Type == eioproto.SIOBinaryAck
		if p.ID > maxAckID || p.Attachments > maxAttachments || (p.Attachments > 0) != binary {
			t.Fatalf("packet %+v from %q is out of the server's bounds", p, b)
		}
	})
}
