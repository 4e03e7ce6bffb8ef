package sticky

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// hostileBodies are handshake bodies a broken or hostile backend may send: lengths that count bytes
// where the client counts UTF-16 units, invalid UTF-8 that a browser decodes differently from Go,
// framing that ends inside the sid, leading zeros, JSONP around each framing.
var hostileBodies = []string{
	// invalid UTF-8 in the open packet, counted one unit per byte (as Go decodes it); a browser
	// and Node decode "\xe2\x82" as one U+FFFD.
	"30:0{\"sid\":\"abc\",\"x\":\"\xe2\x82\",\"y\":1}2:40",
	"29:0{\"sid\":\"abc\",\"x\":\"\xe2\x82\",\"y\":1}2:40",
	"25:0{\"sid\":\"a\xf0\x9f\",\"y\":1}",
	"0{\"sid\":\"abc\xff\",\"upgrades\":[]}\x1e40",
	// a length counted in bytes for non-ASCII text
	v3TextBody(`0{"sid":"ßß","u":"€"}`, "2:40"),
	"27:0{\"sid\":\"ßß\",\"u\":\"€\"}2:40",
	// leading zeros, big lengths, framing that ends early
	"0096:" + v3Packet96 + "2:40",
	"000000096:" + v3Packet96,
	"9:0{\"sid\":\"abcdefgh\"}",
	"\x00\x00\x09\x06\xff" + v3Packet96,
	"\x00\x09\x05\xff" + v3Packet96,
	// JSONP around each framing
	`___eio[0]("96:` + strings.ReplaceAll(v3Packet96, `"`, `\"`) + `");`,
	`___eio[0]("0{\"sid\":\"abc\"}");`,
	`___eio[1]("21:0{\"sid\":\"\u00df\",\"a\":\"\ud83d\ude00\"}");`,
	// the sid not where a naive search finds it
	`0{"x":"sid","sid":"real"}`,
	`0{"sid":"a","sid":"b"}`,
	`0{"a":{"sid":"nested"},"sid":"top"}`,
}

// FuzzRewriteHostileBody checks RewriteHandshake against hostile backend bodies with checks of its
// own, not the package's parser:
//
//   - the output is the input with the tag inserted once, plus the rewritten length prefix of the
//     first packet (v3 framings): no byte that was not in the input;
//   - that length prefix does not lie: decoded as the client decodes it (WHATWG UTF-8 and UTF-16
//     units for v3 text, bytes for v3 binary, a JSON string literal for JSONP), the first packet it
//     delimits is an open packet whose sid is the tagged sid;
//   - on error the output is dst unchanged.
func FuzzRewriteHostileBody(f *testing.F) {
	for _, b := range append(append([]string{}, seedBodies...), hostileBodies...) {
		f.Add([]byte(b), "b1")
	}
	f.Fuzz(func(t *testing.T, body []byte, backendID string) {
		tag := TagFor(backendID)
		orig := bytes.Clone(body)
		out, h, err := RewriteHandshake([]byte("dst"), body, tag)
		if !bytes.Equal(body, orig) {
			t.Fatal("RewriteHandshake modified its input")
		}
		if err != nil {
			if string(out) != "dst" {
				t.Fatalf("dst changed on error: %q", out)
			}
			return
		}
		out = out[3:]
		if bytes.HasPrefix(body, []byte("___eio[")) {
			checkJSONP(t, body, out, tag, h)
			return
		}
		checkFramed(t, body, out, tag, string(h.SID), false)
	})
}

// checkFramed checks a rewrite of a v4, v3 text or v3 binary body. units says that v3 text lengths
// are counted on a string already decoded (JSONP), not on UTF-8 bytes.
func checkFramed(t *testing.T, in, out []byte, tag, rawSID string, decoded bool) {
	t.Helper()
	switch {
	case len(in) > 0 && in[0] <= 1: // v3 binary: type byte, digit bytes, 0xFF
		iff, off := bytes.IndexByte(in, 0xFF), bytes.IndexByte(out, 0xFF)
		if iff < 0 || off < 0 || out[0] != in[0] {
			t.Fatalf("v3 binary framing lost: %q -> %q", in, out)
		}
		checkInsertion(t, in[iff:], out[off:], tag)
		n := 0
		for _, d := range out[1:off] {
			if d > 9 {
				t.Fatalf("v3 binary length digit %d in %q", d, out)
			}
			n = n*10 + int(d)
		}
		if off+1+n > len(out) {
			t.Fatalf("v3 binary length %d runs past the body %q", n, out)
		}
		checkOpen(t, string(out[off+1:off+1+n]), tag, rawSID, out)
	case digitsColon(in) > 0: // v3 text
		ic, oc := digitsColon(in), digitsColon(out)
		if oc <= 0 {
			t.Fatalf("v3 text framing lost: %q -> %q", in, out)
		}
		checkInsertion(t, in[ic:], out[oc:], tag)
		n, _ := strconv.Atoi(string(out[:oc]))
		var packet string
		var ok bool
		if decoded {
			packet, ok = firstUnits([]rune(string(out[oc+1:])), n)
		} else {
			packet, ok = firstUnits(decodeWHATWG(out[oc+1:]), n)
		}
		if !ok {
			t.Fatalf("v3 text length %d is not a packet boundary of %q as the client decodes it", n, out)
		}
		checkOpen(t, packet, tag, rawSID, out)
	default: // v4
		checkInsertion(t, in, out, tag)
		first, _, _ := bytes.Cut(out, []byte{0x1e})
		checkOpen(t, string(runesOf(first)), tag, rawSID, out)
	}
}

// checkJSONP checks a rewrite of a JSONP body: the same wrapper, and a string literal whose value
// is the inner payload rewritten (v3 text counted in UTF-16 units of the decoded string).
func checkJSONP(t *testing.T, in, out []byte, tag string, h Handshake) {
	t.Helper()
	lit := func(b []byte) (prefix, literal, suffix []byte, ok bool) {
		open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || closing <= open {
			return nil, nil, nil, false
		}
		return b[:open+1], b[open+1 : closing], b[closing:], true
	}
	ip, il, is, ok1 := lit(in)
	op, ol, os, ok2 := lit(out)
	if !ok1 || !ok2 || !bytes.Equal(ip, op) || !bytes.Equal(is, os) {
		t.Fatalf("JSONP wrapper changed: %q -> %q", in, out)
	}
	var inner, innerOut string
	if json.Unmarshal(il, &inner) != nil || json.Unmarshal(ol, &innerOut) != nil {
		t.Fatalf("JSONP literal does not decode: %q -> %q", in, out)
	}
	checkFramed(t, []byte(inner), []byte(innerOut), tag, string(h.SID), true)
}

// checkInsertion checks that out is in with tag, a check char and '.' inserted at one place, the
// one where the two first differ.
func checkInsertion(t *testing.T, in, out []byte, tag string) {
	t.Helper()
	if len(out) != len(in)+taggedOverhead {
		t.Fatalf("%q -> %q: %d bytes more, want exactly the tag's %d", in, out, len(out)-len(in), taggedOverhead)
	}
	q := 0
	for q < len(in) && in[q] == out[q] {
		q++
	}
	ins := out[q : q+taggedOverhead]
	if string(ins[:TagLen]) != tag || alphaIndex[ins[TagLen]] < 0 || ins[TagLen+1] != '.' {
		// The sid may start with the tag's own bytes: then the insertion starts earlier.
		for q > 0 && !(string(out[q:q+TagLen]) == tag && out[q+TagLen+1] == '.') {
			q--
		}
		ins = out[q : q+taggedOverhead]
	}
	if string(ins[:TagLen]) != tag || alphaIndex[ins[TagLen]] < 0 || ins[TagLen+1] != '.' ||
		!bytes.Equal(out[:q], in[:q]) || !bytes.Equal(out[q+taggedOverhead:], in[q:]) {
		t.Fatalf("%q -> %q is not the input with %q+check+'.' inserted once", in, out, tag)
	}
}

// checkOpen checks that a packet, as the client delimits it, is an open packet whose sid is the raw
// sid tagged with tag.
func checkOpen(t *testing.T, packet, tag, rawSID string, body []byte) {
	t.Helper()
	if !strings.HasPrefix(packet, "0") || !json.Valid([]byte(packet[1:])) {
		t.Fatalf("the first packet of %q, as the client delimits it, is %q: not an open packet", body, packet)
	}
	// As JSON.parse reads it: keys are case-sensitive (encoding/json's struct fields are not), and
	// of duplicate keys the last wins.
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(packet[1:]), &obj); err != nil {
		t.Fatalf("open packet %q: %v", packet, err)
	}
	var open struct{ SID string }
	if err := json.Unmarshal(obj["sid"], &open.SID); err != nil {
		t.Fatalf("open packet %q: sid: %v", packet, err)
	}
	want := string(runesOf([]byte(rawSID)))
	if !strings.HasPrefix(open.SID, tag) || len(open.SID) < taggedOverhead || open.SID[TagLen+1] != '.' || open.SID[taggedOverhead:] != want {
		t.Fatalf("the client reads sid %q from %q; want %q tagged with %q", open.SID, body, rawSID, tag)
	}
	// A sid that is not UTF-8 reaches the client altered (U+FFFD): its check char cannot match.
	if utf8.ValidString(rawSID) {
		if gotTag, raw, ok := SplitTagged([]byte(open.SID)); !ok || string(gotTag) != tag || string(raw) != rawSID {
			t.Fatalf("the client's sid %q does not split into tag %q and %q", open.SID, tag, rawSID)
		}
	}
}

// digitsColon returns the index of the ':' after the leading decimal digits of b, or -1.
func digitsColon(b []byte) int {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(b) || b[i] != ':' {
		return -1
	}
	return i
}

// firstUnits returns the first n UTF-16 code units of rs as a string, and false when there are
// fewer or the n-th unit splits a surrogate pair.
func firstUnits(rs []rune, n int) (string, bool) {
	units := 0
	for i, r := range rs {
		if units == n {
			return string(rs[:i]), true
		}
		units += len(utf16.Encode([]rune{r}))
		if units > n {
			return "", false
		}
	}
	return string(rs), units == n
}

func runesOf(b []byte) []rune { return decodeWHATWG(b) }

// decodeWHATWG decodes UTF-8 as the WHATWG Encoding Standard does (browsers, Node): each maximal
// subpart of an ill-formed sequence becomes one U+FFFD. Go's decoder instead gives one per byte.
func decodeWHATWG(b []byte) []rune {
	var out []rune
	need, cp := 0, rune(0)
	lower, upper := byte(0x80), byte(0xBF)
	for i := 0; i < len(b); {
		c := b[i]
		if need == 0 {
			i++
			switch {
			case c <= 0x7F:
				out = append(out, rune(c))
			case c >= 0xC2 && c <= 0xDF:
				need, cp = 1, rune(c&0x1F)
			case c >= 0xE0 && c <= 0xEF:
				if c == 0xE0 {
					lower = 0xA0
				} else if c == 0xED {
					upper = 0x9F
				}
				need, cp = 2, rune(c&0x0F)
			case c >= 0xF0 && c <= 0xF4:
				if c == 0xF0 {
					lower = 0x90
				} else if c == 0xF4 {
					upper = 0x8F
				}
				need, cp = 3, rune(c&0x07)
			default:
				out = append(out, utf8.RuneError)
			}
			continue
		}
		if c < lower || c > upper {
			// Ill-formed: one U+FFFD for what came before, then c again as a first byte.
			need, lower, upper = 0, 0x80, 0xBF
			out = append(out, utf8.RuneError)
			continue
		}
		lower, upper = 0x80, 0xBF
		cp = cp<<6 | rune(c&0x3F)
		i++
		if need--; need == 0 {
			out = append(out, cp)
		}
	}
	if need > 0 {
		out = append(out, utf8.RuneError)
	}
	return out
}

func TestDecodeWHATWG(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []rune
	}{
		{"abc", []rune("abc")},
		{"ß€😀", []rune("ß€😀")},
		{"\xe2\x82\"", []rune{0xFFFD, '"'}},
		{"\xe2\x82", []rune{0xFFFD}},
		{"\xff\xfe", []rune{0xFFFD, 0xFFFD}},
		{"\xed\xa0\x80", []rune{0xFFFD, 0xFFFD, 0xFFFD}}, // a surrogate: E0 A0 not allowed after ED
		{"\xf0\x9f\x98", []rune{0xFFFD}},
		{"\xc0\xaf", []rune{0xFFFD, 0xFFFD}},
	} {
		if got := decodeWHATWG([]byte(c.in)); string(got) != string(c.want) {
			t.Errorf("decodeWHATWG(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
