package eioproto

import (
	"reflect"
	"testing"
)

func TestDecodeSocketIO(t *testing.T) {
	tests := []struct {
		in   string
		want SocketIOPacket
		bad  bool
	}{
		{in: "0", want: SocketIOPacket{Type: 0, Nsp: "/", ID: NoAck, Data: []byte{}}},
		{in: `0{"sid":"abc"}`, want: SocketIOPacket{Type: 0, Nsp: "/", ID: NoAck, Data: []byte(`{"sid":"abc"}`)}},
		{in: "0/admin,", want: SocketIOPacket{Type: 0, Nsp: "/admin", ID: NoAck, Data: []byte{}}},
		{in: `0/admin,{"sid":"a"}`, want: SocketIOPacket{Type: 0, Nsp: "/admin", ID: NoAck, Data: []byte(`{"sid":"a"}`)}},
		{in: `2["chat","hi"]`, want: SocketIOPacket{Type: 2, Nsp: "/", ID: NoAck, Data: []byte(`["chat","hi"]`)}},
		{in: `21["chat"]`, want: SocketIOPacket{Type: 2, Nsp: "/", ID: 1, Data: []byte(`["chat"]`)}},
		{in: `2/admin,3["x"]`, want: SocketIOPacket{Type: 2, Nsp: "/admin", ID: 3, Data: []byte(`["x"]`)}},
		{in: `3123["ok"]`, want: SocketIOPacket{Type: 3, Nsp: "/", ID: 123, Data: []byte(`["ok"]`)}},
		{in: `51-["up",{"_placeholder":true,"num":0}]`, want: SocketIOPacket{Type: 5, Attachments: 1, Nsp: "/", ID: NoAck, Data: []byte(`["up",{"_placeholder":true,"num":0}]`)}},
		{in: `52-7["up",{"_placeholder":true,"num":0}]`, want: SocketIOPacket{Type: 5, Attachments: 2, Nsp: "/", ID: 7, Data: []byte(`["up",{"_placeholder":true,"num":0}]`)}},
		{in: `62-/a,7[1]`, want: SocketIOPacket{Type: 6, Attachments: 2, Nsp: "/a", ID: 7, Data: []byte(`[1]`)}},
		{in: "1/a", want: SocketIOPacket{Type: 1, Nsp: "/a", ID: NoAck, Data: []byte{}}},
		{in: `4{"message":"no"}`, want: SocketIOPacket{Type: 4, Nsp: "/", ID: NoAck, Data: []byte(`{"message":"no"}`)}},
		{in: "", bad: true},
		{in: "9", bad: true},
		{in: "5[]", bad: true},
		{in: "51[]", bad: true},
		{in: `5-["x"]`, bad: true},
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
		{SocketIOPacket{Type: 1, ID: NoAck}, "1"},
		{SocketIOPacket{Type: 2, Nsp: "/", ID: 12, Data: []byte(`["a"]`)}, `212["a"]`},
		{SocketIOPacket{Type: 2, Nsp: "/", ID: NoAck, Data: []byte(`/x`)}, `2/,/x`},
		{SocketIOPacket{Type: 5, Attachments: 1, Nsp: "/x", ID: 0, Data: []byte(`[]`)}, `51-/x,0[]`},
		{SocketIOPacket{Type: 6, Attachments: 2, Nsp: "/", ID: 9, Data: []byte(`[{}]`)}, `62-9[{}]`},
	}
	for _, tt := range tests {
		if got := AppendSocketIO(nil, tt.p); string(got) != tt.want {
			t.Errorf("AppendSocketIO(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}
