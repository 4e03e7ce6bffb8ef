package sticky

import (
	"bytes"
	"errors"
	"testing"

	"sioproxy/eioproto"
)

// seedBodies are handshake and payload bodies shared by the fuzz targets' seed corpora.
var seedBodies = []string{
	v4Open, v4Open + "\x1e40", v3Text96, v3Text97, v3Binary96, jsonp96,
	v4Body(`ab\u0063`), v3TextBody(`0{"sid":"ß","u":"😀"}`, "2:4€"),
	"1", "4hello\x1e1", "4hello1", "1:1", "6:4hello1:1", "\x00\x01\xff1", `___eio[0]("1:1");`, "d=1%3A1",
	"", "0", "0{}", "\x01\x05\xff\x04\x01\x02\x03\x04",
}

func FuzzClassify(f *testing.F) {
	f.Add("/socket.io/", "EIO=4&transport=polling&t=OX8oqUE&sid=lv_VI97HAXpY6yYWAAAC", "/socket.io/")
	f.Add("/engine.io", "?sid=&sid=a&j=0&EIO=3", "/engine.io")
	f.Add("/x", "&&=&sid", "")
	f.Fuzz(func(t *testing.T, path, query, prefix string) {
		c := NewClassifier([]string{prefix})
		q := []byte(query)
		info := c.Classify([]byte(path), q, true)
		if !info.Upgrade {
			t.Error("Upgrade flag not copied")
		}
		if !info.EngineIO && (info.SID != nil || info.SIDStart != -1 || info.EIO != 0 || info.JSONP) {
			t.Errorf("non Engine.IO request with fields %+v", info)
		}
		if info.EIO != 0 && info.EIO != 3 && info.EIO != 4 {
			t.Errorf("EIO = %d", info.EIO)
		}
		if (info.SID == nil) != (info.SIDStart == -1) {
			t.Errorf("SID %q with SIDStart %d", info.SID, info.SIDStart)
		}
		if info.SID != nil {
			end := info.SIDStart + len(info.SID)
			if len(info.SID) == 0 || end > len(q) || !bytes.Equal(q[info.SIDStart:end], info.SID) ||
				info.SIDStart < 4 || string(q[info.SIDStart-4:info.SIDStart]) != "sid=" ||
				bytes.IndexByte(info.SID, '&') >= 0 {
				t.Errorf("SID %q at %d is not a sid value of %q", info.SID, info.SIDStart, query)
			}
		}
	})
}

func FuzzSplitTagged(f *testing.F) {
	f.Add([]byte("6Lbr.lv_VI97HAXpY6yYWAAAC"))
	f.Add([]byte("lv_VI97HAXpY6yYWAAAC"))
	f.Add([]byte("AAAA."))
	f.Fuzz(func(t *testing.T, sid []byte) {
		tag, raw, ok := SplitTagged(sid)
		if !ok {
			if tag != nil || raw != nil {
				t.Errorf("parts returned with ok=false")
			}
			return
		}
		if !validTag(tag) || len(raw) == 0 {
			t.Errorf("SplitTagged(%q) = %q, %q", sid, tag, raw)
		}
		if again := AppendTagged(nil, string(tag), raw); !bytes.Equal(again, sid) {
			t.Errorf("AppendTagged(SplitTagged(%q)) = %q", sid, again)
		}
	})
}

func FuzzParseHandshake(f *testing.F) {
	for _, b := range seedBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		h, err := ParseHandshake(body)
		if !bytes.Equal(body, orig) {
			t.Fatal("ParseHandshake modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrBadHandshake) {
				t.Errorf("error %v does not wrap ErrBadHandshake", err)
			}
			return
		}
		if len(h.SID) == 0 || h.Format == FormatUnknown || h.PingInterval < 0 || h.PingTimeout < 0 || h.MaxPayload < 0 {
			t.Errorf("ParseHandshake(%q) = %+v", body, h)
		}
	})
}

func FuzzRewriteHandshake(f *testing.F) {
	for _, b := range seedBodies {
		f.Add([]byte(b), "6Lb")
	}
	f.Add([]byte(v4Open), "bad tag")
	f.Fuzz(func(t *testing.T, body []byte, tag string) {
		orig := bytes.Clone(body)
		out, h, err := RewriteHandshake([]byte("pre"), body, tag)
		if !bytes.Equal(body, orig) {
			t.Fatal("RewriteHandshake modified its input")
		}
		if err != nil {
			if string(out) != "pre" {
				t.Errorf("dst changed on error: %q", out)
			}
			return
		}
		if !bytes.HasPrefix(out, []byte("pre")) {
			t.Fatalf("dst prefix lost: %q", out)
		}
		out = out[3:]
		if len(out) != len(body)+taggedOverhead+lenDigitsGrowth(h, body, out) {
			t.Errorf("rewrite of %q changed the length by %d", body, len(out)-len(body))
		}
		h2, err := ParseHandshake(out)
		if err != nil {
			t.Fatalf("rewritten %q does not parse: %v (from %q)", out, err, body)
		}
		gotTag, raw, ok := SplitTagged(h2.SID)
		if !ok || string(gotTag) != tag || !bytes.Equal(raw, h.SID) {
			t.Errorf("rewritten sid %q splits into %q, %q, %v; want %q, %q", h2.SID, gotTag, raw, ok, tag, h.SID)
		}
		if h2.Format != h.Format || h2.PingInterval != h.PingInterval || h2.PingTimeout != h.PingTimeout || h2.MaxPayload != h.MaxPayload {
			t.Errorf("rewrite changed the handshake: %+v -> %+v", h, h2)
		}
	})
}

// lenDigitsGrowth is how many bytes the length prefix grew by in a rewrite (v3 framings only).
func lenDigitsGrowth(h Handshake, body, out []byte) int {
	switch h.Format {
	case FormatV3Text:
		return bytes.IndexByte(out, ':') - bytes.IndexByte(body, ':')
	case FormatV3Binary:
		return bytes.IndexByte(out, 0xFF) - bytes.IndexByte(body, 0xFF)
	}
	return 0
}

func FuzzHasClosePacket(f *testing.F) {
	for _, b := range seedBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := HasClosePacket(body)
		// A v4 message packet (first byte '4', no separators) is never a close.
		if len(body) > 1 && body[0] == '4' && bytes.IndexByte(body, 0x1E) < 0 && !eioproto.LooksV3Text(body) && got {
			t.Errorf("HasClosePacket(%q) = true for a single message packet", body)
		}
		// Appending a v4 close packet to a v4 payload of messages makes it a close.
		if len(body) > 0 && body[0] == '4' && !eioproto.LooksV3Text(body) {
			withClose := append(bytes.Clone(body), 0x1E, '1')
			if !HasClosePacket(withClose) {
				t.Errorf("HasClosePacket(%q) = false", withClose)
			}
		}
	})
}

func FuzzDecompress(f *testing.F) {
	f.Add("gzip", gzipped(f, v4Open), 200)
	f.Add("deflate", zlibbed(f, v3Text96), 50)
	f.Add("deflate", deflated(f, "abc"), 3)
	f.Add("identity", []byte("x"), 0)
	f.Add("gzip, deflate", []byte{0x1f, 0x8b}, 10)
	f.Fuzz(func(t *testing.T, encoding string, body []byte, limit int) {
		limit %= 1 << 20
		out, err := Decompress(encoding, body, limit)
		if err != nil {
			if out != nil {
				t.Error("output with an error")
			}
			return
		}
		if len(out) > max(limit, 0) {
			t.Errorf("Decompress returned %d bytes, limit %d", len(out), limit)
		}
	})
}
