package proxy

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"testing"
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
