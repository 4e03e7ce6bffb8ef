package eioserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []inPacket
		err  error
	}{
		{"one", "4hello", []inPacket{{typ: '4', data: []byte("hello")}}, nil},
		{"several", "4hello\x1e2\x1e4world", []inPacket{{typ: '4', data: []byte("hello")}, {typ: '2', data: []byte{}}, {typ: '4', data: []byte("world")}}, nil},
		{"utf8", "4€", []inPacket{{typ: '4', data: []byte("€")}}, nil},
		{"binary", "bAQIDBA==", []inPacket{{typ: '4', binary: true, data: []byte{1, 2, 3, 4}}}, nil},
		{"empty", "", nil, errEmptyPacket},
		{"trailing separator", "4a\x1e", []inPacket{{typ: '4', data: []byte("a")}}, errEmptyPacket},
		{"bad type", "7x", nil, errBadType},
		{"bad base64", "b@@", nil, errBadBase64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []inPacket
			_, err := decodePayload([]byte(tc.in), nil, func(p inPacket) bool {
				p.data = bytes.Clone(p.data)
				got = append(got, p)
				return true
			})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d packets %+v, want %+v", len(got), got, tc.want)
			}
			for i := range got {
				if got[i].typ != tc.want[i].typ || got[i].binary != tc.want[i].binary || !bytes.Equal(got[i].data, tc.want[i].data) {
					t.Fatalf("packet %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestAppendPayloadRoundTrip(t *testing.T) {
	frames := []frame{{data: []byte("4hi")}, framePing, {binary: true, data: []byte{0, 255}}}
	enc := appendPayload(nil, frames)
	if string(enc) != "4hi\x1e2\x1ebAP8=" {
		t.Fatalf("encoded %q", enc)
	}
	var n int
	if _, err := decodePayload(enc, nil, func(inPacket) bool { n++; return true }); err != nil || n != 3 {
		t.Fatalf("decoded %d packets, err %v", n, err)
	}
}

func TestDecodeSIO(t *testing.T) {
	tests := []struct {
		in   string
		want sioPacket
		err  error
	}{
		{"0", sioPacket{typ: '0', nsp: "/", id: -1, data: []byte{}}, nil},
		{`0{"token":1}`, sioPacket{typ: '0', nsp: "/", id: -1, data: []byte(`{"token":1}`)}, nil},
		{"0/admin,", sioPacket{typ: '0', nsp: "/admin", id: -1, data: []byte{}}, nil},
		{`2["chat","hi"]`, sioPacket{typ: '2', nsp: "/", id: -1, data: []byte(`["chat","hi"]`)}, nil},
		{`212["chat"]`, sioPacket{typ: '2', nsp: "/", id: 12, data: []byte(`["chat"]`)}, nil},
		{`2/admin,3["x"]`, sioPacket{typ: '2', nsp: "/admin", id: 3, data: []byte(`["x"]`)}, nil},
		{`31["ok"]`, sioPacket{typ: '3', nsp: "/", id: 1, data: []byte(`["ok"]`)}, nil},
		{`52-7["up",{"_placeholder":true,"num":0}]`, sioPacket{typ: '5', attachments: 2, nsp: "/", id: 7, data: []byte(`["up",{"_placeholder":true,"num":0}]`)}, nil},
		{"", sioPacket{}, errSIOEmpty},
		{"9", sioPacket{}, errSIOType},
		{`5["x"]`, sioPacket{}, errSIOAttachments},
		{`50-["x"]`, sioPacket{}, errSIOAttachments},
		{`599999-["x"]`, sioPacket{}, errSIOAttachments},
		{`21234567890123456["x"]`, sioPacket{}, errSIOID},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := decodeSIO([]byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (got.typ != tc.want.typ || got.attachments != tc.want.attachments || got.nsp != tc.want.nsp ||
				got.id != tc.want.id || !bytes.Equal(got.data, tc.want.data)) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name   string
		frames func() ([]frame, error)
		want   []string
	}{
		{"event", func() ([]frame, error) { return encodeEvent("chat", []any{"hi", 2, map[string]bool{"ok": true}}) },
			[]string{`42["chat","hi",2,{"ok":true}]`}},
		{"escaped name", func() ([]frame, error) { return encodeEvent(`a"<b`, nil) }, []string{`42["a\"\u003cb"]`}},
		{"binary event", func() ([]frame, error) { return encodeEvent("up", []any{[]byte{1}, "x", []byte{2, 3}}) },
			[]string{`452-["up",{"_placeholder":true,"num":0},"x",{"_placeholder":true,"num":1}]`, "\x01", "\x02\x03"}},
		{"ack", func() ([]frame, error) { return encodeAck(5, []any{"ok"}) }, []string{`435["ok"]`}},
		{"empty ack", func() ([]frame, error) { return encodeAck(0, nil) }, []string{`430[]`}},
		{"binary ack", func() ([]frame, error) { return encodeAck(9, []any{[]byte("z")}) },
			[]string{`461-9[{"_placeholder":true,"num":0}]`, "z"}},
		{"empty binary and nil", func() ([]frame, error) { return encodeEvent("r", []any{[]byte{}, nil}) },
			[]string{`451-["r",{"_placeholder":true,"num":0},null]`, ""}},
		{"raw json", func() ([]frame, error) {
			return encodeEvent("r", []any{json.RawMessage(`{"a":1}`), json.RawMessage(nil)})
		},
			[]string{`42["r",{"a":1},null]`}},
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
				if string(f.data) != tc.want[i] || f.binary != (i > 0) {
					t.Fatalf("frame %d: %q binary=%v, want %q", i, f.data, f.binary, tc.want[i])
				}
			}
		})
	}
	if _, err := encodeEvent("bad", []any{make(chan int)}); err == nil {
		t.Fatal("unencodable argument accepted")
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{"4hello\x1e2\x1e4world", "bAQIDBA==", "", "\x1e", "b", "40"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var n int
		_, err := decodePayload(body, nil, func(p inPacket) bool {
			if !p.binary && (p.typ < '0' || p.typ > '6') {
				t.Fatalf("bad type %q", p.typ)
			}
			n++
			return true
		})
		if err == nil && n == 0 {
			t.Fatal("no packets and no error")
		}
	})
}

func FuzzDecodeSIO(f *testing.F) {
	for _, s := range []string{"0", `212["chat"]`, `52-7["up",{}]`, "0/admin,", "2/a,1[]", "5-", "6999-"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeSIO(b)
		if err != nil {
			return
		}
		if p.typ < '0' || p.typ > '6' || p.id < -1 || p.attachments < 0 || p.attachments > maxAttachments ||
			(p.attachments > 0) != (p.typ == '5' || p.typ == '6') || p.nsp == "" || p.nsp[0] != '/' {
			t.Fatalf("inconsistent packet %+v from %q", p, b)
		}
	})
}
