package eioproto

import "unicode/utf8"

// The v3 payload framings, as scanners over a body: the proxy (package sticky) reads and rewrites
// handshakes and finds close packets with them, the codecs of this package decode with them.

// V3Text is one record of a v3 text payload at some offset of a body: "<n>:<packet>", n counted in
// UTF-16 code units.
type V3Text struct {
	LenEnd int // index of the ':' after the length digits
	N      int // declared length, in UTF-16 code units
	Start  int // first byte of the packet
	End    int // one past its last byte
}

// NextV3Text reads the v3 text record at b[off:]: 1 to 9 ASCII digits, ':', then N UTF-16 code units
// of UTF-8. ok is false when b[off:] does not start with one.
func NextV3Text(b []byte, off int) (rec V3Text, ok bool) {
	n, i := 0, off
	for i < len(b) && i-off <= maxLenDigits && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if i == off || i-off > maxLenDigits || i >= len(b) || b[i] != ':' {
		return V3Text{}, false
	}
	start := i + 1
	size := UTF16Prefix(b[start:], n)
	if size < 0 {
		return V3Text{}, false
	}
	return V3Text{LenEnd: i, N: n, Start: start, End: start + size}, true
}

// LooksV3Text reports whether b starts like a v3 text payload: digits, then ':'.
func LooksV3Text(b []byte) bool {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i > 0 && i < len(b) && b[i] == ':'
}

// V3Binary is one record of a v3 XHR2 binary payload at some offset of a body.
type V3Binary struct {
	Binary bool // kind byte 0x01 (binary packet) rather than 0x00 (string packet)
	FF     int  // index of the 0xFF terminator of the length digits
	N      int  // declared length in bytes
	Start  int  // first byte of the packet
	End    int  // one past its last byte
}

// NextV3Binary reads the v3 binary record at b[off:]: 0x00 or 0x01, 1 to 9 digit bytes (0..9),
// 0xFF, then N bytes. ok is false when b[off:] does not start with one.
func NextV3Binary(b []byte, off int) (rec V3Binary, ok bool) {
	if off >= len(b) || b[off] > 1 {
		return V3Binary{}, false
	}
	p := V3Binary{Binary: b[off] == 1}
	i := off + 1
	digits := 0
	for ; i < len(b) && b[i] != 0xFF; i++ {
		if b[i] > 9 || digits == maxLenDigits {
			return V3Binary{}, false
		}
		p.N = p.N*10 + int(b[i])
		digits++
	}
	if digits == 0 || i >= len(b) {
		return V3Binary{}, false
	}
	p.FF = i
	p.Start = i + 1
	p.End = p.Start + p.N
	if p.End > len(b) {
		return V3Binary{}, false
	}
	return p, true
}

// UTF16Len returns the length of s in UTF-16 code units, as JavaScript's String.length counts the
// string a browser or Node decodes from s (v3 text lengths): a rune above U+FFFF counts two, and
// invalid UTF-8 counts as the U+FFFD replacements of the WHATWG decoder (one per maximal subpart:
// "\xe2\x82" is one, not two).
func UTF16Len(s []byte) int {
	n := 0
	for i := 0; i < len(s); {
		units, size := decodeUnits(s[i:])
		i += size
		n += units
	}
	return n
}

// UTF16Prefix returns the number of bytes of s that hold its first n UTF-16 code units (counted as
// UTF16Len counts them), or -1 if s is shorter or n ends inside a surrogate pair.
func UTF16Prefix(s []byte, n int) int {
	i := 0
	for n > 0 {
		if i >= len(s) {
			return -1
		}
		units, size := decodeUnits(s[i:])
		if units > n {
			return -1
		}
		i += size
		n -= units
	}
	return i
}

// decodeUnits decodes the first character of s as the WHATWG UTF-8 decoder does and returns its
// UTF-16 length and its size in bytes. An ill-formed sequence gives one U+FFFD for its maximal
// subpart: the longest prefix that a well-formed sequence could start with (at least one byte).
func decodeUnits(s []byte) (units, size int) {
	c := s[0]
	if c < utf8.RuneSelf {
		return 1, 1
	}
	var need int
	lo, hi := byte(0x80), byte(0xBF) // the range of the second byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1, 1 // a continuation byte or a byte that never starts a sequence
	}
	for k := 1; k <= need; k++ {
		if k >= len(s) || s[k] < lo || s[k] > hi {
			return 1, k // the maximal subpart s[:k] is one U+FFFD
		}
		lo, hi = 0x80, 0xBF
	}
	if need == 3 {
		return 2, 4 // above U+FFFF: a surrogate pair
	}
	return 1, need + 1
}
