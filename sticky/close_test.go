package sticky

import (
	"net/url"
	"testing"
)

func TestHasClosePacket(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"empty", "", false},
		{"v4 close alone", "1", true},
		{"v4 close last", "4hello\x1e1", true},
		{"v4 close first", "1\x1e4hello", true},
		{"v4 close middle", "4hello\x1e1\x1e2", true},
		{"v4 message ending in 1", "4hello1", false},
		{"v4 message 1", "41", false},
		{"v4 doc example", "4hello\x1e2\x1e4world", false},
		{"v4 close with data is not sent", "1x", false},
		{"v4 ping", "2", false},
		{"v4 noop", "6", false},
		{"v4 binary", "bAQIDBA==", false},
		{"v4 message looking like v3", "42:x", false},
		{"v4 message with close packet text", "4\"1:1\"", false},
		{"v4 empty packets", "\x1e\x1e1\x1e", true},
		{"v3 text close", "1:1", true},
		{"v3 text close after messages", "6:4hello1:1", true},
		{"v3 text close before messages", "1:16:4hello", true},
		{"v3 text doc example", "6:4hello6:4world", false},
		{"v3 text message ending in 1", "7:4hello1", false},
		{"v3 text non-ASCII then close", "2:4€1:1", true},
		{"v3 text astral then close", "3:4😀1:1", true},
		{"v3 text base64 binary", "10:b4AQIDBA==", false},
		{"v3 text noop", "1:6", false},
		{"v3 text truncated read as v4", "6:4hel", false},
		{"v3 text length mismatch read as v4", "10:1", false},
		{"v3 binary close", "\x00\x01\xff1", true},
		{"v3 binary close after message", "\x00\x06\xff4hello\x00\x01\xff1", true},
		{"v3 binary close after binary", "\x01\x05\xff\x04\x01\x02\x03\x04\x00\x01\xff1", true},
		{"v3 binary doc example no close", "\x00\x09\x06\xff" + v3Packet96 + "\x00\x02\xff40", false},
		{"v3 binary binary packet with 1", "\x01\x01\xff1", false},
		{"v3 binary message 1", "\x00\x02\xff41", false},
		{"v3 binary truncated", "\x00\x01\xff", false},
		{"v3 binary malformed after close", "\x00\x01\xff1\x00\x05", false},
		{"v3 binary bad digit", "\x00\x0b\xff1", false},
		{"jsonp close", `___eio[0]("1:1");`, true},
		{"jsonp v4 close", `___eio[3]("4hi\u001e1");`, true},
		{"jsonp message", `___eio[0]("6:4hello");`, false},
		{"jsonp broken", `___eio[0]("1:1`, false},
		{"jsonp bad literal", `___eio[0](1:1);`, false},
		{"jsonp form post close", "d=" + url.QueryEscape("6:4hello1:1"), true},
		{"jsonp form post message", "d=" + url.QueryEscape("6:4hello"), false},
		{"jsonp form post bad escape", "d=%zz", false},
		{"handshake", v4Open, false},
		{"v3 handshake", v3Text96, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasClosePacket([]byte(tt.body)); got != tt.want {
				t.Errorf("HasClosePacket(%q) = %v, want %v", tt.body, got, tt.want)
			}
		})
	}
}

func TestIsPollingAnswer(t *testing.T) {
	cases := []struct {
		name   string
		post   bool
		ct, ce string
		body   string
		want   bool
	}{
		{"post ok", true, "text/html", "", "ok", true},
		{"post OK (python-engineio)", true, "text/plain", "", "OK", true},
		{"post other", true, "text/html", "", "nope", false},
		{"v4 payload", false, "text/plain; charset=UTF-8", "", "2\x1e4hello", true},
		{"v4 binary", false, "text/plain; charset=UTF-8", "", "bAQID", true},
		{"v3 text", false, "text/plain; charset=UTF-8", "", "1:6", true},
		{"v3 binary", false, "application/octet-stream", "", "\x00\x01\xff6", true},
		{"jsonp", false, "text/javascript; charset=UTF-8", "", `___eio[0]("1:6");`, true},
		{"jsonp not", false, "text/javascript", "", "alert(1)", false},
		{"gzip", false, "text/plain", "gzip", "\x1f\x8b", true},
		{"client bundle", false, "application/javascript", "", "/*! Socket.IO */", false},
		{"html page", false, "text/html", "", "<html>", false},
		{"text not a packet", false, "text/plain", "", "hello", false},
		{"empty", false, "text/plain", "", "", false},
	}
	for _, c := range cases {
		if got := IsPollingAnswer(c.post, []byte(c.ct), []byte(c.ce), []byte(c.body)); got != c.want {
			t.Errorf("%s: IsPollingAnswer = %v, want %v", c.name, got, c.want)
		}
	}
}
