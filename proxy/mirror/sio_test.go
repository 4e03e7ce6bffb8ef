package mirror

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"sioproxy/eioproto"
)

func TestEventName(t *testing.T) {
	tests := []struct {
		in   string // a Socket.IO packet
		name string
		ok   bool
	}{
		{`2["chat","hi"]`, "chat", true},
		{`21["chat"]`, "chat", true},
		{`2/admin,17["x\"y",1]`, `x"y`, true},
		{`2[ "\u00e9t\u00e9" ]`, "été", true},
		{`51-["up",{"_placeholder":true,"num":0}]`, "up", true},
		{`2[1,"x"]`, "", false},
		{`2{"a":1}`, "", false},
		{`2["open`, "", false},
		{`2`, "", false},
	}
	for _, tt := range tests {
		sp, err := eioproto.DecodeSocketIO([]byte(tt.in))
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		name, ok := EventName(sp.Data)
		if name != tt.name || ok != tt.ok {
			t.Errorf("%q: EventName = %q %v, want %q %v", tt.in, name, ok, tt.name, tt.ok)
		}
	}
}

// FuzzEventName checks EventName against encoding/json on valid UTF-8 arrays.
func FuzzEventName(f *testing.F) {
	for _, s := range []string{`["chat"]`, `["x\"y",1]`, `["up",{"_placeholder":true,"num":0}]`, `["\u00e9"]`, ` [ "a\\b" ]`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		name, ok := EventName(data)
		var args []json.RawMessage
		if !utf8.Valid(data) || json.Unmarshal(data, &args) != nil || len(args) == 0 {
			return
		}
		var want string
		wantOK := args[0][0] == '"' && json.Unmarshal(args[0], &want) == nil
		if ok != wantOK || name != want {
			t.Fatalf("EventName(%q) = %q %v, want %q %v", data, name, ok, want, wantOK)
		}
	})
}
