package testkit

import (
	"fmt"
	"strings"
	"testing"

	"sioproxy/proxy"
)

func TestRedactSIDs(t *testing.T) {
	const sid = "Ab1C.xYz-_0123456789abcd"
	h := "#" + proxy.SIDHash(sid)
	tests := []struct{ in, want string }{
		{"GET /socket.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1", "GET /socket.io/?EIO=4&transport=polling&sid=" + h + " HTTP/1.1"},
		{"/socket.io/?sid=" + strings.ReplaceAll(sid, ".", "%2E") + "&EIO=4", "/socket.io/?sid=" + h + "&EIO=4"},
		{`0{"sid":"` + sid + `","upgrades":["websocket"]}`, `0{"sid":"` + h + `","upgrades":["websocket"]}`},
		{fmt.Sprintf("%q", `0{"sid": "`+sid+`"}`), fmt.Sprintf("%q", `0{"sid": "`+h+`"}`)},
		{"sioproxy_sid_unknown_total 3, sid_hash abc, no sid here", "sioproxy_sid_unknown_total 3, sid_hash abc, no sid here"},
		{`{"sid_hash":"abc"}`, `{"sid_hash":"abc"}`},
	}
	for _, tt := range tests {
		if got := RedactSIDs(tt.in); got != tt.want {
			t.Errorf("RedactSIDs(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.Contains(RedactSIDs(tt.in), sid) {
			t.Errorf("RedactSIDs(%q) still carries the sid", tt.in)
		}
	}
}
