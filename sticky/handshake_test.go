package sticky

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{
		FormatUnknown: "unknown", FormatV4: "v4", FormatV3Text: "v3-text", FormatV3Binary: "v3-binary", FormatJSONP: "jsonp", 99: "unknown",
	} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, got, want)
		}
	}
}

func TestDocExampleSizes(t *testing.T) {
	if len(v4Open) != 118 {
		t.Errorf("v4 example is %d bytes, the doc says 118", len(v4Open))
	}
	if len(v3Packet96) != 96 || len(v3Packet97) != 97 {
		t.Errorf("v3 example packets are %d and %d chars, want 96 and 97", len(v3Packet96), len(v3Packet97))
	}
}

func TestParseHandshake(t *testing.T) {
	v3Want := Handshake{SID: []byte("ptzi_578ycUci8WLB9G1"), PingInterval: 25 * time.Second, PingTimeout: 5 * time.Second}
	v4Want := Handshake{SID: []byte("lv_VI97HAXpY6yYWAAAC"), PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 1000000, Format: FormatV4}
	long := strings.Repeat("L", 200)
	tests := []struct {
		name string
		body string
		want Handshake
	}{
		{"v4 doc example", v4Open, v4Want},
		{"v4 with initial packets", v4Open + "\x1e40\x1e42[\"hi\"]", v4Want},
		{"v3 text 96", v3Text96, withFormat(v3Want, FormatV3Text)},
		{"v3 text 97", v3Text97, Handshake{SID: []byte("ptzi_578ycUci8WLB9G1"), PingInterval: 25 * time.Second, PingTimeout: time.Minute, Format: FormatV3Text}},
		{"v3 text alone", "96:" + v3Packet96, withFormat(v3Want, FormatV3Text)},
		{"v3 text then non-ASCII", v3Text96 + "2:4€", withFormat(v3Want, FormatV3Text)},
		{"v3 text leading zeros", "096:" + v3Packet96, withFormat(v3Want, FormatV3Text)},
		{"v3 binary doc example", v3Binary96, withFormat(v3Want, FormatV3Binary)},
		{"v3 binary then binary packet", "\x00\x09\x06\xff" + v3Packet96 + "\x01\x05\xff\x04\x01\x02\x03\x04", withFormat(v3Want, FormatV3Binary)},
		{"jsonp doc example", jsonp96, withFormat(v3Want, FormatJSONP)},
		{"jsonp v4 payload", `___eio[12]("0{\"sid\":\"abc\"}");`, Handshake{SID: []byte("abc"), Format: FormatJSONP}},
		{"jsonp escaped sid", `___eio[1]("0{\"sid\":\"a\\u002fb\"}");`, Handshake{SID: []byte("a/b"), Format: FormatJSONP}},
		{"short sid", v4Body("a"), withSID(v4Want, "a")},
		{"long sid", v4Body(long), withSID(v4Want, long)},
		{"sid with dot", v4Body("abc.def"), withSID(v4Want, "abc.def")},
		{"sid with dash and underscore", v4Body("-_-_"), withSID(v4Want, "-_-_")},
		{"sid non-ASCII", v4Body("sïd"), withSID(v4Want, "sïd")},
		{"escaped sid", v4Body(`ab\u0063\/`), withSID(v4Want, "abc/")},
		{"v3 text non-ASCII open packet", v3TextBody(`0{"sid":"x","upgrades":["wébsocket😀"]}`, "2:40"), Handshake{SID: []byte("x"), Format: FormatV3Text}},
		{"other key order and spaces", "0 { \"pingTimeout\" : 1 , \"sid\" : \"s\" ,\n\"pingInterval\":2 } ", Handshake{SID: []byte("s"), PingInterval: 2 * time.Millisecond, PingTimeout: time.Millisecond, Format: FormatV4}},
		{"nested sid ignored", `0{"x":{"sid":"inner"},"y":["sid","}"],"sid":"outer"}`, Handshake{SID: []byte("outer"), Format: FormatV4}},
		{"duplicate sid last wins", `0{"sid":"first","sid":"last"}`, Handshake{SID: []byte("last"), Format: FormatV4}},
		{"escaped key", `0{"\u0073id":"k"}`, Handshake{SID: []byte("k"), Format: FormatV4}},
		{"no timers", `0{"sid":"n"}`, Handshake{SID: []byte("n"), Format: FormatV4}},
		{"float and exponent timers", `0{"sid":"f","pingInterval":25000.9,"pingTimeout":2e4,"maxPayload":1E6}`, Handshake{SID: []byte("f"), PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 1000000, Format: FormatV4}},
		{"unusable timers", `0{"sid":"u","pingInterval":-5,"pingTimeout":"20000","maxPayload":1e300}`, Handshake{SID: []byte("u"), Format: FormatV4}},
		{"huge timer ignored", `0{"sid":"h","pingInterval":99999999999999999999}`, Handshake{SID: []byte("h"), Format: FormatV4}},
		{"upgrades empty (websocket first frame)", `0{"sid":"w","upgrades":[],"pingInterval":25000,"pingTimeout":5000}`, Handshake{SID: []byte("w"), PingInterval: 25 * time.Second, PingTimeout: 5 * time.Second, Format: FormatV4}},
		{"huge body", v4Open + "\x1e4" + strings.Repeat("x", 1<<20), v4Want},
		{"huge open packet", `0{"pad":"` + strings.Repeat("p", 1<<20) + `","sid":"big"}`, Handshake{SID: []byte("big"), Format: FormatV4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseHandshake([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseHandshake: %v", err)
			}
			assertHandshake(t, got, tt.want)
		})
	}
}

func withFormat(h Handshake, f Format) Handshake { h.Format = f; return h }
func withSID(h Handshake, sid string) Handshake  { h.SID = []byte(sid); return h }

func assertHandshake(t *testing.T, got, want Handshake) {
	t.Helper()
	if string(got.SID) != string(want.SID) || got.PingInterval != want.PingInterval || got.PingTimeout != want.PingTimeout ||
		got.MaxPayload != want.MaxPayload || got.Format != want.Format {
		t.Errorf("handshake = {SID:%q %v %v %d %v}, want {SID:%q %v %v %d %v}",
			got.SID, got.PingInterval, got.PingTimeout, got.MaxPayload, got.Format,
			want.SID, want.PingInterval, want.PingTimeout, want.MaxPayload, want.Format)
	}
}

func TestParseHandshakeErrors(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"just the type", "0"},
		{"unterminated object", "0{"},
		{"no sid", "0{}"},
		{"sid number", `0{"sid":1}`},
		{"sid null", `0{"sid":null}`},
		{"sid empty", `0{"sid":""}`},
		{"sid escaped empty", `0{"sid":"\u0000"}` + "x"},
		{"not an object", `0["sid","a"]`},
		{"string json", `0"sid"`},
		{"trailing comma", `0{"sid":"a",}`},
		{"trailing garbage", `0{"sid":"a"}x`},
		{"control char in sid", "0{\"sid\":\"a\x01b\"}"},
		{"not an open packet v4", `4{"sid":"a"}`},
		{"v4 message first", "40\x1e" + v4Open},
		{"v3 close packet", "1:1"},
		{"v3 not open", "6:4hello"},
		{"v3 truncated packet", v3Text96[:50]},
		{"v3 length too long", "97:" + v3Packet96},
		{"v3 length zero", "0:"},
		{"v3 too many digits", "0000000096:" + v3Packet96},
		{"v3 splits surrogate pair", "1:😀"},
		{"v3 binary no terminator", "\x00\x09\x06"},
		{"v3 binary no digits", "\x00\xff0{}"},
		{"v3 binary bad digit", "\x00\x0a\xff" + v3Packet96},
		{"v3 binary truncated", v3Binary96[:60]},
		{"v3 binary first packet binary", "\x01\x05\xff\x04\x01\x02\x03\x04"},
		{"v3 binary too many digits", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xff0"},
		{"jsonp no parens", `___eio[0]`},
		{"jsonp not a string", `___eio[0](0{"sid":"a"});`},
		{"jsonp bad literal", `___eio[0]("0{\"sid\":\"a\"}\x");`},
		{"jsonp nested", `___eio[0]("___eio[0](\"0{}\");");`},
		{"jsonp empty", `___eio[0]("");`},
		{"binary garbage", "\xff\xfe\xfd"},
		{"html error page", "<html>502 Bad Gateway</html>"},
		{"engine.io error json", `{"code":1,"message":"Session ID unknown"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHandshake([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParseHandshake(%q) = SID %q, want an error", tt.body, h.SID)
			}
			if !errors.Is(err, ErrBadHandshake) {
				t.Errorf("error %v does not wrap ErrBadHandshake", err)
			}
		})
	}
}

func TestParseHandshakeTruncated(t *testing.T) {
	// Every prefix that cuts the open packet must fail cleanly.
	for _, ex := range []struct {
		body     string
		openEnds int
	}{
		{v4Open, len(v4Open)},
		{v3Text96, 3 + len(v3Packet96)},
		{v3Binary96, 4 + len(v3Packet96)},
		{jsonp96, len(jsonp96) - 1}, // the trailing ';' is optional
	} {
		for n := 0; n < ex.openEnds; n++ {
			if h, err := ParseHandshake([]byte(ex.body[:n])); err == nil {
				t.Errorf("ParseHandshake(%q) = SID %q, want an error", ex.body[:n], h.SID)
			}
		}
		if _, err := ParseHandshake([]byte(ex.body[:ex.openEnds])); err != nil {
			t.Errorf("ParseHandshake(%q) with the whole open packet: %v", ex.body[:ex.openEnds], err)
		}
	}
}

func TestParseHandshakeAliasesBody(t *testing.T) {
	body := []byte(v4Open)
	h, err := ParseHandshake(body)
	if err != nil {
		t.Fatal(err)
	}
	if &h.SID[0] != &body[9] {
		t.Errorf("SID does not alias the body")
	}
	if cap(h.SID) != len(h.SID) {
		t.Errorf("SID capacity %d exceeds length %d: an append would clobber the body", cap(h.SID), len(h.SID))
	}
}
