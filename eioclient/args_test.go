package eioclient

import "testing"

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
