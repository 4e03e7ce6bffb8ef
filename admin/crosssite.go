package admin

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// A browser on an operator's machine reaches a loopback admin listener as well as the operator's
// curl does, on behalf of any page it has open. The rules below refuse what such a page can make it
// send without the admin API's consent (no CORS headers are ever set, so anything needing a
// preflight fails in the browser already):
//
//   - Sec-Fetch-Site other than same-origin or none (a page on another port of 127.0.0.1 is
//     same-site, not same-origin);
//   - an Origin whose host is not the request's Host ("null" included);
//   - a body a cross-site HTML form or a no-cors fetch can send: application/x-www-form-urlencoded,
//     multipart/form-data, text/plain (the admin API takes its parameters in the query);
//   - without a token, a browser request whose Host is a name other than localhost: a page that
//     rebinds its own DNS name to 127.0.0.1 is same-origin with itself, and only its Host tells.
//
// Clients that are not browsers send none of these headers, and the dashboard, served by the
// admin listener itself, makes same-origin requests with no body.

// formTypes are the request content types a browser sends cross-site without a preflight.
var formTypes = []string{"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}

// refuseCrossSite returns the status and reason to refuse r with, or 0 when r may go on. It is
// applied to the mutating endpoints; tokenSet says whether the admin API has a bearer token.
func refuseCrossSite(r *http.Request, tokenSet bool) (int, string) {
	site := r.Header.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" && site != "none" {
		return http.StatusForbidden, "cross-site request refused (Sec-Fetch-Site: " + short(site) + "); use the dashboard on this listener, or a client that is not a browser"
	}
	origin := r.Header.Get("Origin")
	if origin != "" && !sameOrigin(origin, r.Host) {
		return http.StatusForbidden, "cross-site request refused (Origin " + short(origin) + " is not this admin listener)"
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		essence, _, _ := strings.Cut(ct, ";")
		essence = strings.ToLower(strings.TrimSpace(essence))
		for _, f := range formTypes {
			if essence == f {
				return http.StatusUnsupportedMediaType, "a " + f + " body is refused on mutating endpoints (a cross-site form can send one); parameters go in the query, send no body"
			}
		}
	}
	if !tokenSet && (site != "" || origin != "") && !literalHost(r.Host) {
		return http.StatusForbidden, "a browser request without admin.token must name the admin listener by IP address or localhost (Host " + short(r.Host) + ")"
	}
	return 0, ""
}

// sameOrigin reports whether an Origin header names host (the request's Host) over http or https.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// literalHost reports whether a Host header is an IP address or localhost, with or without a port.
func literalHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil
}
