package sticky

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrTooLarge is returned by Decompress when the decoded body would exceed the limit.
var ErrTooLarge = errors.New("sticky: decompressed body exceeds limit")

// ErrUnsupportedEncoding is returned by Decompress for a content coding it does not know.
var ErrUnsupportedEncoding = errors.New("sticky: unsupported content encoding")

// Decompress decodes body per a Content-Encoding header value: "gzip" (or "x-gzip"), "deflate"
// (zlib-wrapped as RFC 9110 says, or raw deflate as some servers send), "identity" or "". A list
// ("gzip, identity") is decoded last coding first. At most limit bytes are ever produced: a longer
// result gives ErrTooLarge, so a decompression bomb costs memory in proportion to limit, not to its
// expanded size. With
// identity the body itself is returned (checked against the limit, not copied).
func Decompress(encoding string, body []byte, limit int) ([]byte, error) {
	limit = max(limit, 0)
	out := body
	rest := encoding
	for {
		coding := rest
		comma := strings.LastIndexByte(rest, ',')
		if comma >= 0 {
			coding, rest = rest[comma+1:], rest[:comma]
		}
		coding = strings.TrimSpace(coding)
		var err error
		switch {
		case coding == "" || strings.EqualFold(coding, "identity"):
		case strings.EqualFold(coding, "gzip") || strings.EqualFold(coding, "x-gzip"):
			out, err = gunzip(out, limit)
		case strings.EqualFold(coding, "deflate"):
			out, err = inflate(out, limit)
		default:
			err = fmt.Errorf("%w: %q", ErrUnsupportedEncoding, coding)
		}
		if err != nil {
			return nil, err
		}
		if comma < 0 {
			break
		}
	}
	if len(out) > limit {
		return nil, ErrTooLarge
	}
	return out, nil
}

func gunzip(b []byte, limit int) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("sticky: gzip: %w", err)
	}
	return readLimited(r, limit, "gzip")
}

// inflate decodes zlib when b starts with a valid zlib header, falling back to raw deflate.
func inflate(b []byte, limit int) ([]byte, error) {
	if len(b) >= 2 && b[0]&0x0F == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0 {
		r, err := zlib.NewReader(bytes.NewReader(b))
		if err == nil {
			out, err := readLimited(r, limit, "deflate")
			if err == nil || errors.Is(err, ErrTooLarge) {
				return out, err
			}
		}
	}
	return readLimited(flate.NewReader(bytes.NewReader(b)), limit, "deflate")
}

// readLimited reads r to the end, failing with ErrTooLarge past limit bytes.
func readLimited(r io.ReadCloser, limit int, name string) ([]byte, error) {
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("sticky: %s: %w", name, err)
	}
	if len(out) > limit {
		return nil, ErrTooLarge
	}
	return out, nil
}
