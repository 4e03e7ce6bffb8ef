package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http/httputil"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"sioproxy/sticky"
)

func FuzzSplitURI(f *testing.F) {
	for _, s := range []string{"/socket.io/?EIO=4&sid=x", "http://h/p?q", "*", "", "/a", "https://host", "?x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, uri []byte) {
		path, query := splitURI(uri)
		if len(path)+len(query) > len(uri) {
			t.Fatalf("%q split into %q + %q", uri, path, query)
		}
		if query != nil && !bytes.HasSuffix(uri, query) {
			t.Fatalf("query %q is not the tail of %q", query, uri)
		}
	})
}

func FuzzForwardedClient(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "1.2.3.4, 10.0.0.1", " ,,", "::ffff:1.2.3.4, 10.1.1.1", "garbage, 10.0.0.2"} {
		f.Add([]byte(s))
	}
	trusted := trustedNets{netip.MustParsePrefix("10.0.0.0/8")}
	peer := netip.MustParseAddr("10.9.9.9")
	f.Fuzz(func(t *testing.T, xff []byte) {
		got := forwardedClient(xff, peer, trusted)
		if !got.IsValid() {
			t.Fatalf("%q gave an invalid address", xff)
		}
	})
}

func FuzzReadHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00"))
	f.Add([]byte("HTTP/1.1 400 Bad Request\n\n"))
	f.Add([]byte("no end"))
	f.Fuzz(func(t *testing.T, data []byte) {
		head, err := readHead(bufio.NewReader(bytes.NewReader(data)))
		if err == nil && (!bytes.HasPrefix(data, head) || !bytes.HasSuffix(head, []byte("\n"))) {
			t.Fatalf("head %q of %q", head, data)
		}
	})
}

func TestForwardedClient(t *testing.T) {
	trusted := trustedNets{netip.MustParsePrefix("10.0.0.0/8")}
	peer := netip.MustParseAddr("10.0.0.1")
	for xff, want := range map[string]string{
		"203.0.113.9":                     "203.0.113.9",
		"198.51.100.7, 10.0.0.2":          "198.51.100.7",
		"1.1.1.1, 198.51.100.7, 10.0.0.2": "198.51.100.7",
		"10.0.0.3, 10.0.0.2":              "10.0.0.3",
		"bogus, 10.0.0.2":                 "10.0.0.2",
		"":                                "10.0.0.1",
	} {
		if got := forwardedClient([]byte(xff), peer, trusted); got.String() != want {
			t.Errorf("%q: %s, want %s", xff, got, want)
		}
	}
}

// refHeadVerdict is the guard's rule, byte by byte over the whole stream: the first empty line
// after a non-empty one ends the head; "body" if it completes CRLFCRLF, "bad" otherwise.
func refHeadVerdict(data []byte) string {
	nonEmpty, lineStart := false, 0
	for i, c := range data {
		if c != '\n' {
			continue
		}
		line := data[lineStart:i]
		switch empty := len(line) == 0 || len(line) == 1 && line[0] == '\r'; {
		case !empty:
			nonEmpty = true
		case nonEmpty:
			if len(line) == 1 && i >= 3 && data[i-3] == '\r' && data[i-2] == '\n' {
				return "body"
			}
			return "bad"
		}
		lineStart = i + 1
	}
	return "head"
}

// FuzzGuardScan feeds a byte stream to the head guard in pieces cut where cuts says, and compares
// its verdict with the byte-by-byte rule: a head is refused iff its blank line is a bare LF.
func FuzzGuardScan(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\nHost: x\n\n", "GET / HTTP/1.1\r\nHost: x\n\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\na\n\nb", "\n\nGET /\n\n", "X\r\r\n\r\n",
	} {
		f.Add([]byte(s), []byte{1, 3, 7})
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		g := &guardConn{}
		rest := data
		for i := 0; len(rest) > 0 && g.state == guardHead && !g.bad; i++ {
			n := len(rest)
			if i < len(cuts) && int(cuts[i]) > 0 && int(cuts[i]) < n {
				n = int(cuts[i])
			}
			g.scan(rest[:n])
			rest = rest[n:]
		}
		got := "head"
		switch {
		case g.bad:
			got = "bad"
		case g.state == guardBody:
			got = "body"
		}
		if want := refHeadVerdict(data); got != want {
			t.Fatalf("%q cut at %v: guard says %s, want %s", data, cuts, got, want)
		}
	})
}

// FuzzForwardHead parses a request with fuzzed header lines as the server does, then checks the
// head built for the backend: it parses, carries one Host and one of each forwarding field, no
// hop-by-hop field (in any case), nothing the client's Connection names, and every other field
// of the client's as it was.
func FuzzForwardHead(f *testing.F) {
	for _, s := range []string{
		"X-A: 1\r\n", "connection: x-b, keep-alive\r\nx-b: 2\r\nX-C: 3\r\n", "x-forwarded-for: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n",
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\n", "te: trailers\r\nTrailer: x\r\nKeep-Alive: 5\r\n",
		"Content-Length: 3\r\n", "accept-encoding: gzip\r\nOrigin: https://a\r\n",
	} {
		f.Add([]byte(s), false, false)
	}
	trusted := trustedNets{netip.MustParsePrefix("127.0.0.0/8")}
	f.Fuzz(func(t *testing.T, fields []byte, upgrade, dropAE bool) {
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		raw := append([]byte("GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: front.test\r\n"), fields...)
		raw = append(raw, "\r\n"...)
		if h.Read(bufio.NewReader(bytes.NewReader(raw))) != nil {
			return
		}
		var sc reqScan
		scanRequest(&h, &sc)
		if sc.bad != 0 {
			return
		}
		peer := netip.MustParseAddr("127.0.0.1")
		o := headOpts{upgrade: upgrade, dropAE: dropAE, bodyLen: -2, trusted: trusted, peer: peer,
			clientAddr: requestClient(&h, &sc, peer, trusted, nil)}
		out := appendHead(nil, &h, &sc, &o)
		var back fasthttp.RequestHeader
		back.DisableNormalizing()
		if err := back.Read(bufio.NewReader(bytes.NewReader(out))); err != nil {
			t.Fatalf("the head sent to the backend does not parse: %v\n%q", err, out)
		}
		count := map[hdrID]int{}
		it := headerLines{b: back.RawHeaders()}
		for {
			name, _, fold, ok := it.next()
			if !ok {
				break
			}
			if fold {
				t.Fatalf("a folded line in %q", out)
			}
			id := headerID(name)
			count[id]++
			switch id {
			case hdrKeepAlive, hdrProxyConnection, hdrProxyAuthenticate, hdrProxyAuthorization, hdrTE, hdrTrailer,
				hdrTransferEncoding, hdrContentLength, hdrExpect:
				t.Fatalf("hop-by-hop or framing field %q reached the backend: %q", name, out)
			case hdrUpgrade:
				if !upgrade {
					t.Fatalf("Upgrade without an upgrade: %q", out)
				}
			case hdrAcceptEncoding:
				if dropAE {
					t.Fatalf("Accept-Encoding kept: %q", out)
				}
			case hdrOther, hdrOrigin:
				if sc.namedByConnection(&h, name) {
					t.Fatalf("%q is named by Connection and reached the backend: %q", name, out)
				}
			}
		}
		for _, id := range []hdrID{hdrHost, hdrXForwardedFor, hdrXRealIP, hdrXForwardedProto, hdrXForwardedHost} {
			if count[id] != 1 {
				t.Fatalf("field %d appears %d times: %q", id, count[id], out)
			}
		}
		if upgrade && count[hdrConnection] != 1 || !upgrade && count[hdrConnection] != 0 {
			t.Fatalf("Connection fields: %d (upgrade %v): %q", count[hdrConnection], upgrade, out)
		}
	})
}

// FuzzNormalizedPath: the normalised view of a path has no empty, "." or ".." segment, starts
// with '/' when the path does, and normalising it again changes nothing.
func FuzzNormalizedPath(f *testing.F) {
	for _, s := range []string{"/socket.io/../x", "/a/./b/", "//a//b", "/%2e%2E/x", "/a\\..\\b", "/..", "/.", "/a/b/..", "/%2f%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			return
		}
		n := appendNormalizedPath(nil, []byte(p))
		if len(n) == 0 || n[0] != '/' {
			t.Fatalf("%q normalises to %q", p, n)
		}
		segs := strings.Split(string(n[1:]), "/")
		for i, seg := range segs {
			if seg == "." || seg == ".." || seg == "" && i < len(segs)-1 {
				t.Fatalf("%q normalises to %q (segment %q)", p, n, seg)
			}
		}
		if !bytes.ContainsAny(n, "%") {
			if again := appendNormalizedPath(nil, n); !bytes.Equal(again, n) {
				t.Fatalf("%q: %q normalises again to %q", p, n, again)
			}
		}
	})
}

// FuzzAbsoluteForm: an accepted absolute-form target splits into an authority and an origin form
// that put together give the target back.
func FuzzAbsoluteForm(f *testing.F) {
	for _, s := range []string{"http://h/p?q", "HTTPS://h:1", "http://h?x", "http://@h/", "http:///x", "https://a@b/c", "ftp://h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		authority, origin, ok := absoluteForm(nil, []byte(uri))
		if !ok {
			return
		}
		if len(authority) == 0 || bytes.ContainsAny(authority, "/?@") || len(origin) == 0 || origin[0] != '/' {
			t.Fatalf("%q: authority %q, origin %q", uri, authority, origin)
		}
		rest := uri[strings.Index(uri, "://")+3:]
		if got := string(authority) + string(origin); got != rest && got != string(authority)+"/"+rest[len(authority):] {
			t.Fatalf("%q: %q + %q", uri, authority, origin)
		}
	})
}

// FuzzChunkedReader compares the chunked decoding of streamed answers with net/http's.
func FuzzChunkedReader(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", "ffffffffffffffff\r\n", "1\r\na\n0\r\n\r\n", "0\r\n", "g\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h fasthttp.ResponseHeader
		cr := chunkedReader{br: bufio.NewReader(bytes.NewReader(data)), trailer: h.ReadTrailer}
		got, err := io.ReadAll(&cr)
		want, werr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data)))
		if err == nil && werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%q: decoded %q, net/http %q", data, got, want)
		}
		if err == nil && len(got) > len(data) {
			t.Fatalf("%q: decoded more than was there: %q", data, got)
		}
	})
}

// FuzzParseChunkSize: a size is accepted only as at most 15 hex digits (no overflow) and read right.
func FuzzParseChunkSize(f *testing.F) {
	for _, s := range []string{"1a\r\n", "0;ext\r\n", "ffffffffffffffff\r\n", "-1\r\n", " 5 \r\n", "\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		n, err := parseChunkSize(line)
		if err != nil {
			return
		}
		if n < 0 || n >= 1<<60 {
			t.Fatalf("%q: size %d", line, n)
		}
	})
}

// FuzzStripResponse: after stripping, a backend's answer carries no hop-by-hop field, in any case,
// and none its Connection header named.
func FuzzStripResponse(f *testing.F) {
	for _, s := range []string{"Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n", "connection: x-a, close\r\nx-a: 1\r\nX-B: 2\r\n",
		"UPGRADE: websocket\r\nproxy-connection: x\r\nTE: y\r\n", "Content-Type: text/plain\r\nSet-Cookie: a=b\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, fields []byte) {
		var h fasthttp.ResponseHeader
		h.DisableNormalizing()
		raw := append([]byte("HTTP/1.1 200 OK\r\n"), fields...)
		raw = append(raw, "\r\n"...)
		if h.Read(bufio.NewReader(bytes.NewReader(raw))) != nil {
			return
		}
		var named []string
		n := 0
		for k, v := range h.All() {
			n++
			if headerID(k) == hdrConnection {
				for len(v) > 0 {
					var tok []byte
					tok, v = nextToken(v)
					named = append(named, string(tok))
				}
			}
		}
		if n > maxStrip || len(named) > maxConnTokens {
			return // beyond what one pass is sized for
		}
		stripResponse(&h, false)
		for k := range h.All() {
			switch headerID(k) {
			case hdrConnection, hdrKeepAlive, hdrProxyConnection, hdrProxyAuthenticate, hdrProxyAuthorization, hdrTE, hdrUpgrade:
				t.Fatalf("%q kept after stripping %q", k, raw)
			}
			for _, tok := range named {
				if strings.EqualFold(tok, string(k)) && !strings.EqualFold(tok, "close") && !strings.EqualFold(tok, "keep-alive") {
					t.Fatalf("%q named by Connection, kept after stripping %q", k, raw)
				}
			}
		}
	})
}

// FuzzQueryEscape: an escaped sid decodes, as engine.io decodes it, to the sid.
func FuzzQueryEscape(f *testing.F) {
	for _, s := range []string{"abc", "a.b-c_d", "a b+c%", "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, sid []byte) {
		if got := sticky.AppendUnescaped(nil, appendQueryEscaped(nil, sid)); !bytes.Equal(got, sid) {
			t.Fatalf("%q escapes and decodes to %q", sid, got)
		}
	})
}

// FuzzRedirectHost: whatever Host a client sends, the https redirect's host is empty, an IP address,
// or a name of letters, digits, '-' and '.': it cannot add a path, userinfo, port or header.
func FuzzRedirectHost(f *testing.F) {
	for _, s := range []string{"example.com", "example.com:80", "[::1]:8080", "1.2.3.4", "a@b", "x\r\ny", "[::1", "::1", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := redirectHost(h)
		if got == "" {
			return
		}
		if strings.HasPrefix(got, "[") {
			if a, err := netip.ParseAddr(strings.Trim(got, "[]")); err != nil || !a.Is6() || !strings.HasSuffix(got, "]") {
				t.Fatalf("redirectHost(%q) = %q: not a bracketed IPv6 address", h, got)
			}
			return
		}
		for i := 0; i < len(got); i++ {
			c := got[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("redirectHost(%q) = %q: byte %q", h, got, c)
			}
		}
	})
}
