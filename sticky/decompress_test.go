package sticky

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"strings"
	"testing"
)

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zlibbed(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func deflated(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecompress(t *testing.T) {
	big := v4Open + "\x1e4" + strings.Repeat("abc", 2000)
	tests := []struct {
		name, encoding string
		body           []byte
		want           string
	}{
		{"identity", "identity", []byte(v4Open), v4Open},
		{"empty encoding", "", []byte(v4Open), v4Open},
		{"gzip", "gzip", gzipped(t, v4Open), v4Open},
		{"gzip upper case and spaces", " GZIP ", gzipped(t, big), big},
		{"x-gzip", "x-gzip", gzipped(t, v3Text96), v3Text96},
		{"gzip concatenated members", "gzip", append(gzipped(t, "ab"), gzipped(t, "cd")...), "abcd"},
		{"deflate zlib", "deflate", zlibbed(t, big), big},
		{"deflate raw", "deflate", deflated(t, big), big},
		{"deflate raw short", "Deflate", deflated(t, "0"), "0"},
		{"list gzip then deflate", "deflate, gzip", gzipped(t, string(zlibbed(t, v4Open))), v4Open},
		{"list with identity", "gzip, identity", gzipped(t, v4Open), v4Open},
		{"gzip empty", "gzip", gzipped(t, ""), ""},
		{"binary framing through gzip", "gzip", gzipped(t, v3Binary96), v3Binary96},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decompress(tt.encoding, tt.body, 1<<20)
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Decompress = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecompressLimit(t *testing.T) {
	bomb := strings.Repeat("\x00", 2<<20) // 2 MiB of zeros compresses to ~2 KiB
	tests := []struct {
		name, encoding string
		body           []byte
		limit          int
		wantErr        error
	}{
		{"gzip bomb", "gzip", gzipped(t, bomb), 64 << 10, ErrTooLarge},
		{"deflate bomb", "deflate", zlibbed(t, bomb), 64 << 10, ErrTooLarge},
		{"raw deflate bomb", "deflate", deflated(t, bomb), 64 << 10, ErrTooLarge},
		{"identity over limit", "identity", []byte(v4Open), 117, ErrTooLarge},
		{"gzip one over", "gzip", gzipped(t, v4Open), 117, ErrTooLarge},
		{"negative limit", "", []byte("x"), -1, ErrTooLarge},
		{"brotli", "br", []byte("x"), 100, ErrUnsupportedEncoding},
		{"zstd in list", "zstd, gzip", gzipped(t, "x"), 100, ErrUnsupportedEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decompress(tt.encoding, tt.body, tt.limit)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("got %d bytes with an error", len(got))
			}
		})
	}
	// Exactly at the limit is fine.
	if got, err := Decompress("gzip", gzipped(t, v4Open), len(v4Open)); err != nil || string(got) != v4Open {
		t.Errorf("at the limit: %q, %v", got, err)
	}
}

func TestDecompressCorrupt(t *testing.T) {
	gz := gzipped(t, v4Open)
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-5] ^= 0xFF
	tests := []struct {
		name, encoding string
		body           []byte
	}{
		{"gzip not gzip", "gzip", []byte(v4Open)},
		{"gzip truncated", "gzip", gz[:len(gz)/2]},
		{"gzip bad checksum", "gzip", badCRC},
		{"gzip trailing garbage", "gzip", append(bytes.Clone(gz), "garbage"...)},
		{"gzip empty", "gzip", nil},
		{"deflate garbage", "deflate", []byte{0xFF, 0xFF, 0xFF}},
		{"deflate truncated", "deflate", zlibbed(t, strings.Repeat("abc", 1000))[:20]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := Decompress(tt.encoding, tt.body, 1<<20); err == nil {
				t.Errorf("Decompress = %q, want an error", got)
			}
		})
	}
}
