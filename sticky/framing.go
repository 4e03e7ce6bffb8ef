package sticky

import (
	"bytes"
	"unicode/utf8"
)

// maxLenDigits bounds the decimal packet length of v3 framings (999 999 999 is plenty).
const maxLenDigits = 9

// v3TextLength reads the "N:" prefix of a v3 text packet at b. It returns N, the index of the ':'
// and ok=false when b does not start with 1..maxLenDigits ASCII digits followed by ':'.
func v3TextLength(b []byte) (n, colon int, ok bool) {
	i := 0
	for i < len(b) && i <= maxLenDigits && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if i == 0 || i > maxLenDigits || i >= len(b) || b[i] != ':' {
		return 0, 0, false
	}
	return n, i, true
}

// looksV3Text reports whether b starts like a v3 text payload: digits then ':'.
func looksV3Text(b []byte) bool {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i > 0 && i < len(b) && b[i] == ':'
}

// utf16Prefix returns the byte length of the first n UTF-16 code units of b (UTF-8). Invalid
// UTF-8 bytes count as one unit each (U+FFFD), runes above U+FFFF as two. ok is false when b is
// too short or the n-th unit would split a surrogate pair.
func utf16Prefix(b []byte, n int) (int, bool) {
	i := 0
	for n > 0 {
		if i >= len(b) {
			return 0, false
		}
		if b[i] < utf8.RuneSelf {
			i++
			n--
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		units := 1
		if r > 0xFFFF {
			units = 2
		}
		if units > n {
			return 0, false
		}
		i += size
		n -= units
	}
	return i, true
}

// v3Text is one packet of a v3 text payload.
type v3Text struct {
	lenEnd int // index of the ':' after the length digits
	n      int // declared length in UTF-16 units
	start  int // first byte of the packet
	end    int // one past its last byte
}

// nextV3Text reads the v3 text packet at b[off:].
func nextV3Text(b []byte, off int) (v3Text, bool) {
	n, colon, ok := v3TextLength(b[off:])
	if !ok {
		return v3Text{}, false
	}
	start := off + colon + 1
	size, ok := utf16Prefix(b[start:], n)
	if !ok {
		return v3Text{}, false
	}
	return v3Text{lenEnd: off + colon, n: n, start: start, end: start + size}, true
}

// v3Binary is one packet of a v3 XHR2 binary payload.
type v3Binary struct {
	binary bool // type byte 0x01 (binary) rather than 0x00 (string)
	ff     int  // index of the 0xFF terminator of the length digits
	n      int  // declared length in bytes
	start  int  // first byte of the packet
	end    int  // one past its last byte
}

// nextV3Binary reads the v3 binary packet at b[off:]: 0x00|0x01, digit bytes 0..9, 0xFF, N bytes.
func nextV3Binary(b []byte, off int) (v3Binary, bool) {
	if off >= len(b) || b[off] > 1 {
		return v3Binary{}, false
	}
	p := v3Binary{binary: b[off] == 1}
	i := off + 1
	digits := 0
	for ; i < len(b) && b[i] != 0xFF; i++ {
		if b[i] > 9 || digits == maxLenDigits {
			return v3Binary{}, false
		}
		p.n = p.n*10 + int(b[i])
		digits++
	}
	if digits == 0 || i >= len(b) {
		return v3Binary{}, false
	}
	p.ff = i
	p.start = i + 1
	p.end = p.start + p.n
	if p.end > len(b) {
		return v3Binary{}, false
	}
	return p, true
}

// jsonpPrefix starts every JSONP polling response: ___eio[j]("...");
var jsonpPrefix = []byte("___eio[")

// jsonpLiteral returns the JSON string literal of a JSONP body: the bytes between the first '('
// and the last ')'.
func jsonpLiteral(b []byte) ([]byte, bool) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing <= open {
		return nil, false
	}
	return b[open+1 : closing], true
}
