package health

import (
	"strings"
	"testing"
)

func TestParseOpenPacket(t *testing.T) {
	tests := []struct {
		name, body, sid string
		ok              bool
	}{
		{"v4", `0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`, "lv_VI97HAXpY6yYWAAAC", true},
		{"followed by packets", "0{\"sid\":\"abc\"}\x1e40{\"sid\":\"x\"}", "abc", true},
		{"empty", "", "", false},
		{"v3 length prefix", `96:0{"sid":"abc"}`, "", false},
		{"message packet", `4{"sid":"abc"}`, "", false},
		{"no sid", `0{"upgrades":[]}`, "", false},
		{"empty sid", `0{"sid":""}`, "", false},
		{"sid not a string", `0{"sid":5}`, "", false},
		{"bad json", `0{"sid":"abc"`, "", false},
		{"oversized sid", `0{"sid":"` + strings.Repeat("a", 300) + `"}`, "", false},
		{"error body", `{"code":0,"message":"Transport unknown"}`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sid, err := parseOpenPacket([]byte(tc.body))
			if (err == nil) != tc.ok || sid != tc.sid {
				t.Fatalf("parseOpenPacket(%q) = %q, %v; want %q ok=%v", tc.body, sid, err, tc.sid, tc.ok)
			}
		})
	}
}

func FuzzParseOpenPacket(f *testing.F) {
	f.Add([]byte(`0{"sid":"abc","pingInterval":25000}`))
	f.Add([]byte("0{\"sid\":\"abc\"}\x1e2probe"))
	f.Add([]byte(`97:0{"sid":"abc"}`))
	f.Add([]byte("0"))
	f.Fuzz(func(t *testing.T, body []byte) {
		sid, err := parseOpenPacket(body)
		if err != nil {
			if sid != "" {
				t.Fatalf("sid %q with error %v", sid, err)
			}
			return
		}
		if sid == "" || len(sid) > maxSIDLen || len(body) < 2 || body[0] != '0' || body[1] != '{' {
			t.Fatalf("accepted %q with sid %q", body, sid)
		}
	})
}
