package testkit

import (
	"errors"
	"net/url"
	"regexp"

	"sioproxy/proxy"
)

// sidInText matches a sid in a message: a query parameter sid=VALUE, or a JSON field "sid":"VALUE"
// (also with its quotes escaped, as %q prints it). The value is submatch 1 or 2.
var sidInText = regexp.MustCompile(`\bsid=([^&\s"'\\#<>()\[\],;]+)|\\?"sid\\?"\s*:\s*\\?"([^"\\]+)`)

// RedactSIDs returns s with every sid in it (a query parameter sid=... or a JSON field "sid":"...",
// as in a URL, a handshake body or a backend's log line) replaced by "#" and its short hash
// (proxy.SIDHash of the unescaped value), for test messages: a sid is its session's bearer
// credential and never appears in a log line or report.
func RedactSIDs(s string) string {
	return sidInText.ReplaceAllStringFunc(s, func(m string) string {
		sub := sidInText.FindStringSubmatchIndex(m)
		lo, hi := sub[2], sub[3]
		if lo < 0 {
			lo, hi = sub[4], sub[5]
		}
		v := m[lo:hi]
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		return m[:lo] + "#" + proxy.SIDHash(v) + m[hi:]
	})
}

// RedactURLError returns err with the URL a *url.Error names (an HTTP client's error, whose query
// may carry a sid) passed through RedactSIDs; other errors are returned as they are. The result
// wraps the same cause.
func RedactURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if r := RedactSIDs(ue.URL); r != ue.URL {
		return &url.Error{Op: ue.Op, URL: r, Err: ue.Err}
	}
	return err
}
