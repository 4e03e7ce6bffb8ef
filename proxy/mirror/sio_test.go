package mirror

import "testing"

func TestParseSIO(t *testing.T) {
	tests := []struct {
		in    string
		typ   byte
		atts  int
		nsp   string
		id    int64
		data  string
		event string
		err   bool
	}{
		{in: "0", typ: 0, nsp: "/", id: NoAck},
		{in: `0{"sid":"x"}`, typ: 0, nsp: "/", id: NoAck, data: `{"sid":"x"}`},
		{in: "0/admin,", typ: 0, nsp: "/admin", id: NoAck},
		{in: `2["chat","hi"]`, typ: 2, nsp: "/", id: NoAck, data: `["chat","hi"]`, event: "chat"},
		{in: `21["chat"]`, typ: 2, nsp: "/", id: 1, data: `["chat"]`, event: "chat"},
		{in: `2/admin,17["x\"y",1]`, typ: 2, nsp: "/admin", id: 17, data: `["x\"y",1]`, event: `x"y`},
		{in: `31["ok"]`, typ: 3, nsp: "/", id: 1, data: `["ok"]`},
		{in: `51-["up",{"_placeholder":true,"num":0}]`, typ: 5, atts: 1, nsp: "/", id: NoAck, data: `["up",{"_placeholder":true,"num":0}]`, event: "up"},
		{in: `62-/a,9[{"_placeholder":true,"num":0}]`, typ: 6, atts: 2, nsp: "/a", id: 9, data: `[{"_placeholder":true,"num":0}]`},
		{in: "1", typ: 1, nsp: "/", id: NoAck},
		{in: "", err: true},
		{in: "7", err: true},
		{in: `5["x"]`, err: true},
		{in: `51["x"]`, err: true},
	}
	for _, tt := range tests {
		p, err := ParseSIO([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if tt.err {
			continue
		}
		if p.Type != tt.typ || p.Attachments != tt.atts || string(p.Nsp) != tt.nsp || p.ID != tt.id || string(p.Data) != tt.data {
			t.Errorf("%q: got %d %d %q %d %q", tt.in, p.Type, p.Attachments, p.Nsp, p.ID, p.Data)
		}
		if p.Type != SIOEvent && p.Type != SIOBinaryEvent {
			continue
		}
		name, ok := EventName(p.Data)
		if ok != (tt.event != "") || name != tt.event {
			t.Errorf("%q: event %q %v, want %q", tt.in, name, ok, tt.event)
		}
	}
}

func FuzzParseSIO(f *testing.F) {
	for _, s := range []string{`21["chat"]`, `2/admin,17["x\"y",1]`, `51-["up",{"_placeholder":true,"num":0}]`, "0/a,", `2["\u00e9"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseSIO(b)
		if err != nil {
			return
		}
		if p.Type > 6 || p.Attachments < 0 || (p.ID != NoAck && p.ID < 0) || len(p.Nsp) == 0 {
			t.Fatalf("bad packet %+v", p)
		}
		EventName(p.Data)
	})
}
