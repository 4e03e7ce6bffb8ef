package sticky

import (
	"errors"
	"strings"
	"testing"
)

func TestRewriteHandshake(t *testing.T) {
	const tag = "6Lb"
	tagged := func(sid string) string { return string(AppendTagged(nil, tag, []byte(sid))) }
	v4Tagged := strings.Replace(v4Open, "lv_VI97HAXpY6yYWAAAC", "6Lbr.lv_VI97HAXpY6yYWAAAC", 1)
	p96 := strings.Replace(v3Packet96, "ptzi_578ycUci8WLB9G1", tagged("ptzi_578ycUci8WLB9G1"), 1)
	p97 := strings.Replace(v3Packet97, "ptzi_578ycUci8WLB9G1", tagged("ptzi_578ycUci8WLB9G1"), 1)
	nonASCII := `0{"upgrades":["wébsocket😀"],"sid":"ß"}`
	long := strings.Repeat("L", 200)
	tests := []struct {
		name, body, want, sid string
	}{
		{"v4 doc example", v4Open, v4Tagged, "lv_VI97HAXpY6yYWAAAC"},
		{"v4 only first packet", v4Open + "\x1e40{\"sid\":\"lv_VI97HAXpY6yYWAAAC\"}", v4Tagged + "\x1e40{\"sid\":\"lv_VI97HAXpY6yYWAAAC\"}", "lv_VI97HAXpY6yYWAAAC"},
		{"v3 text 96", v3Text96, "101:" + p96 + "2:40", "ptzi_578ycUci8WLB9G1"},
		{"v3 text 97", v3Text97, "102:" + p97 + "2:40", "ptzi_578ycUci8WLB9G1"},
		{"v3 text leading zeros", "096:" + v3Packet96, "101:" + p96, "ptzi_578ycUci8WLB9G1"},
		{"v3 text short", "12:0{\"sid\":\"a\"}", "17:0{\"sid\":\"" + tagged("a") + "\"}", "a"},
		{"v3 text later packet untouched", v3Text96 + "15:0{\"sid\":\"zz\"}", "101:" + p96 + "2:40" + "15:0{\"sid\":\"zz\"}", "ptzi_578ycUci8WLB9G1"},
		{"v3 text non-ASCII", v3TextBody(nonASCII, "2:4€"), v3TextBody(strings.Replace(nonASCII, "ß", tagged("ß"), 1), "2:4€"), "ß"},
		{"v3 binary doc example", v3Binary96, "\x00\x01\x00\x01\xff" + p96 + "\x00\x02\xff40", "ptzi_578ycUci8WLB9G1"},
		{"v3 binary then binary packet", v3BinaryBody(v3Packet97, "\x01\x05\xff\x04\x01\x02\x03\x04"), v3BinaryBody(p97, "\x01\x05\xff\x04\x01\x02\x03\x04"), "ptzi_578ycUci8WLB9G1"},
		{"short sid", v4Body("a"), v4Body(tagged("a")), "a"},
		{"long sid", v4Body(long), v4Body(tagged(long)), long},
		{"sid with dot", v4Body("a.b"), v4Body(tagged("a.b")), "a.b"},
		{"sid already tagged-looking", v4Body("6Lbr.x"), v4Body(tagged("6Lbr.x")), "6Lbr.x"},
		{"odd spacing kept", "0 {\"sid\" :\t\"s\" }", "0 {\"sid\" :\t\"" + tagged("s") + "\" }", "s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("HTTP-BODY:")
			out, h, err := RewriteHandshake(prefix, []byte(tt.body), tag)
			if err != nil {
				t.Fatalf("RewriteHandshake: %v", err)
			}
			if got := string(out); got != "HTTP-BODY:"+tt.want {
				t.Errorf("RewriteHandshake =\n%q\nwant\n%q", got, "HTTP-BODY:"+tt.want)
			}
			if string(h.SID) != tt.sid {
				t.Errorf("Handshake.SID = %q, want the original %q", h.SID, tt.sid)
			}
			h2, err := ParseHandshake(out[len(prefix):])
			if err != nil {
				t.Fatalf("rewritten body does not parse: %v", err)
			}
			if h2.Format != h.Format || h2.PingInterval != h.PingInterval || h2.PingTimeout != h.PingTimeout || h2.MaxPayload != h.MaxPayload {
				t.Errorf("rewritten handshake %+v differs from the original %+v beyond the sid", h2, h)
			}
			gotTag, raw, ok := SplitTagged(h2.SID)
			if !ok || string(gotTag) != tag || string(raw) != tt.sid {
				t.Errorf("SplitTagged(%q) = %q, %q, %v", h2.SID, gotTag, raw, ok)
			}
		})
	}
}

func TestRewriteHandshakeNotRewritable(t *testing.T) {
	tests := []struct {
		name, body, tag, sid string
		format               Format
	}{
		{"jsonp doc example", jsonp96, "6Lb", "ptzi_578ycUci8WLB9G1", FormatJSONP},
		{"escaped sid", v4Body(`ab\u0063`), "6Lb", "abc", FormatV4},
		{"escaped slash in sid", v4Body(`a\/b`), "6Lb", "a/b", FormatV4},
		{"v3 escaped sid", v3TextBody(`0{"sid":"\"q\""}`, ""), "6Lb", `"q"`, FormatV3Text},
		{"empty tag", v4Open, "", "lv_VI97HAXpY6yYWAAAC", FormatV4},
		{"long tag", v4Open, "ABCD", "lv_VI97HAXpY6yYWAAAC", FormatV4},
		{"tag outside alphabet", v4Open, "A.B", "lv_VI97HAXpY6yYWAAAC", FormatV4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			out, h, err := RewriteHandshake(dst, []byte(tt.body), tt.tag)
			if !errors.Is(err, ErrNotRewritable) {
				t.Fatalf("err = %v, want ErrNotRewritable", err)
			}
			if string(out) != "keep" {
				t.Errorf("dst changed to %q", out)
			}
			if string(h.SID) != tt.sid || h.Format != tt.format {
				t.Errorf("Handshake = SID %q format %v, want %q %v", h.SID, h.Format, tt.sid, tt.format)
			}
		})
	}
}

func TestRewriteHandshakeMalformed(t *testing.T) {
	for _, body := range []string{"", "0", "0{}", `4{"sid":"a"}`, v3Text96[:40], v3Binary96[:40], "<html>"} {
		out, h, err := RewriteHandshake([]byte("keep"), []byte(body), "6Lb")
		if !errors.Is(err, ErrBadHandshake) || errors.Is(err, ErrNotRewritable) {
			t.Errorf("RewriteHandshake(%q) err = %v, want ErrBadHandshake", body, err)
		}
		if string(out) != "keep" || h.SID != nil {
			t.Errorf("RewriteHandshake(%q) = %q, SID %q; want dst unchanged and no sid", body, out, h.SID)
		}
	}
}
