package sticky

import "bytes"

// The v3 framings (text and XHR2 binary) are eioproto's (NextV3Text, NextV3Binary, UTF16Prefix);
// what is left here is the JSONP wrapping, which only polling responses and POSTs carry.

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
