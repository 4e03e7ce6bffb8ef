package hostile

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// TestHostile runs every raw-socket case of issue 10. Each case names the point of the issue it
// shows (#N) or the class of input; CASES.md has the table of answers.
func TestHostile(t *testing.T) {
	runCases(t, hostileCases())
}

func hostileCases() []hostileCase {
	forged := "AAAAAAAAAAAAAAAAAAAA"
	longSID := strings.Repeat("A", 8000)
	return []hostileCase{
		// #1: header names in any case.
		{name: "1 lowercase upgrade", request: get("/socket.io/?EIO=4&transport=websocket",
			"upgrade: websocket", "connection: Upgrade", "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version: 13"),
			want: wantWebSocketOpen},
		{name: "1 uppercase upgrade", request: get("/socket.io/?EIO=4&transport=websocket",
			"UPGRADE: websocket", "CONNECTION: keep-alive, Upgrade", "SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==", "SEC-WEBSOCKET-VERSION: 13"),
			want: wantWebSocketOpen},
		{name: "1 lowercase x-real-ip x-forwarded-proto x-forwarded-host from an untrusted client",
			request: get("/__headers", "x-real-ip: 6.6.6.6", "x-forwarded-proto: https", "x-forwarded-host: evil.test"),
			want: wantEchoed(func(t *testing.T, e echoed) {
				wantOneHeader(t, e, "X-Real-IP", untrustedIP)
				wantOneHeader(t, e, "X-Forwarded-Proto", "http")
				wantOneHeader(t, e, "X-Forwarded-Host", hostName)
				wantOneHeader(t, e, "X-Forwarded-For", untrustedIP)
			})},
		{name: "1 uppercase X-REAL-IP X-FORWARDED-FOR from an untrusted client",
			request: get("/__headers", "X-REAL-IP: 6.6.6.6", "X-FORWARDED-FOR: 6.6.6.6"),
			want: wantEchoed(func(t *testing.T, e echoed) {
				wantOneHeader(t, e, "X-Real-IP", untrustedIP)
				wantOneHeader(t, e, "X-Forwarded-For", "6.6.6.6, "+untrustedIP)
			})},
		{name: "1 lowercase hop-by-hop request headers",
			request: get("/__headers", "connection: x-secret, keep-alive", "x-secret: 1", "keep-alive: timeout=5",
				"proxy-authorization: Basic Zm9vOmJhcg==", "proxy-connection: keep-alive", "te: trailers", "trailer: x-foo", "upgrade: h2c"),
			want: wantEchoed(func(t *testing.T, e echoed) {
				for _, h := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "TE", "Trailer", "Upgrade"} {
					wantNoHeader(t, e, h)
				}
			})},
		{name: "1 lowercase accept-encoding on a handshake",
			request: get("/socket.io/?EIO=4&transport=polling", "accept-encoding: gzip, deflate, br"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				if sid := wantHandshake(t, r, resp, err); sid != "" {
					if got := headerLines(r.c.handshakeHeaders(t, rawSID(sid)), "Accept-Encoding"); len(got) != 0 {
						t.Errorf("the backend got Accept-Encoding %q on the handshake; want none (the proxy must read the open packet)", got)
					}
				}
			}},
		{name: "1 uppercase ACCEPT-ENCODING on a handshake",
			request: get("/socket.io/?EIO=4&transport=polling", "ACCEPT-ENCODING: gzip"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				if sid := wantHandshake(t, r, resp, err); sid != "" {
					if got := headerLines(r.c.handshakeHeaders(t, rawSID(sid)), "Accept-Encoding"); len(got) != 0 {
						t.Errorf("the backend got Accept-Encoding %q on the handshake; want none", got)
					}
				}
			}},
		{name: "1 lowercase origin on the proxy's own error",
			request: get(pollURL(forged), "origin: http://app.hostile.test"),
			want:    wantSIDUnknown("http://app.hostile.test")},
		{name: "1 two X-Forwarded-For lines from a trusted proxy", from: trustedIP,
			request: get("/__headers", "X-Forwarded-For: 6.6.6.6", "X-Forwarded-For: 203.0.113.7"),
			want: wantEchoed(func(t *testing.T, e echoed) {
				wantOneHeader(t, e, "X-Real-IP", "203.0.113.7")
				wantOneHeader(t, e, "X-Forwarded-For", "6.6.6.6, 203.0.113.7, "+trustedIP)
			})},
		{name: "1 X-Forwarded-For and x-forwarded-for from a trusted proxy", from: trustedIP,
			request: get("/__headers", "X-Forwarded-For: 6.6.6.6", "x-forwarded-for: 203.0.113.7"),
			want: wantEchoed(func(t *testing.T, e echoed) {
				wantOneHeader(t, e, "X-Real-IP", "203.0.113.7")
				wantOneHeader(t, e, "X-Forwarded-For", "6.6.6.6, 203.0.113.7, "+trustedIP)
			})},
		{name: "1 lowercase x-forwarded-proto from a trusted proxy is kept", from: trustedIP,
			request: get("/__headers", "x-forwarded-for: 203.0.113.7", "x-forwarded-proto: https", "x-forwarded-host: app.test"),
			want: wantEchoed(func(t *testing.T, e echoed) {
				wantOneHeader(t, e, "X-Real-IP", "203.0.113.7")
				wantOneHeader(t, e, "X-Forwarded-Proto", "https")
				wantOneHeader(t, e, "X-Forwarded-Host", "app.test")
			})},

		// #2: a client's error is the client's.
		{name: "2 HTTP/1.0 without Host", request: lit("GET /__name HTTP/1.0\r\n\r\n"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				// 400 before any backend is tried, or forwarded with a Host the proxy supplies.
				if checkStatus(t, resp, err, http.StatusBadRequest, http.StatusOK) && resp.Status == http.StatusOK && !r.c.names()[string(resp.Body)] {
					t.Errorf("body %q, want a backend name", resp.Body)
				}
			}},
		{name: "2 HTTP/1.1 without Host", request: lit("GET /__name HTTP/1.1\r\n\r\n"), want: wantStatus(http.StatusBadRequest)},
		{name: "2 two Host headers", request: get("/__name", "Host: other.test"), want: wantStatus(http.StatusBadRequest)},
		{name: "2 absolute-form http target", request: lit("GET http://" + hostName + "/__name HTTP/1.1\r\nHost: " + hostName + "\r\n\r\n"),
			want: wantBackendName},
		{name: "2 absolute-form https target", request: lit("GET https://" + hostName + "/__name HTTP/1.1\r\nHost: " + hostName + "\r\n\r\n"),
			want: wantBackendName},
		{name: "2 absolute-form handshake", request: lit("GET http://" + hostName + "/socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: " + hostName + "\r\n\r\n"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) { wantHandshake(t, r, resp, err) }},
		{name: "2 absolute-form without a path", request: lit("GET http://" + hostName + " HTTP/1.1\r\nHost: " + hostName + "\r\n\r\n"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				// The origin form of an empty path is "/": backend.js answers 404 "not found" there.
				if checkStatus(t, resp, err, http.StatusNotFound) && string(resp.Body) != "not found" {
					t.Errorf("body %q, want the backend's \"not found\"", resp.Body)
				}
			}},
		{name: "2 target without a leading slash", request: lit("GET __name HTTP/1.1\r\nHost: " + hostName + "\r\n\r\n"),
			want: wantStatus(http.StatusBadRequest)},
		{name: "2 upgrade on a path no backend answers", request: get("/chat", wsHeaders...), timeout: 8 * time.Second,
			want: wantStatus(http.StatusBadRequest, http.StatusNotFound, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout)},
		{name: "2 CONNECT", request: lit("CONNECT " + hostName + ":443 HTTP/1.1\r\nHost: " + hostName + ":443\r\n\r\n"),
			want: wantStatus(http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusNotImplemented)},

		// #4: bare LF.
		{name: "4 bare-LF request", request: lit("GET /__name HTTP/1.1\nHost: " + hostName + "\n\n"),
			want: wantStatus(http.StatusBadRequest)},
		{name: "4 bare-LF handshake", request: lit("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\nHost: " + hostName + "\n\n"),
			want: wantStatus(http.StatusBadRequest)},

		// #8: classification equals what the backend sees.
		{name: "8 dot-segment out of the Engine.IO path", request: get("/socket.io/../__name?EIO=4&transport=polling"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				if !checkStatus(t, resp, err, http.StatusBadRequest, http.StatusOK) || resp.Status != http.StatusOK {
					return
				}
				if !r.c.names()[string(resp.Body)] {
					t.Errorf("body %q, want a backend name", resp.Body)
				}
				if d := r.metricDelta(t, "sioproxy_requests_total", `kind="handshake"`); d != 0 {
					t.Errorf("the proxy counted a handshake for a request the backend took for /__name")
				}
			}},
		{name: "8 dot-segment into the Engine.IO path", request: get("/x/../socket.io/?EIO=4&transport=polling"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				if checkStatus(t, resp, err, http.StatusBadRequest, http.StatusOK) && resp.Status == http.StatusOK {
					wantHandshake(t, r, resp, err)
				}
			}},
		{name: "8 percent-encoded dot-segment", request: get("/socket.io/%2e%2e/__name?EIO=4&transport=polling"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				if !checkStatus(t, resp, err, http.StatusBadRequest, http.StatusOK, http.StatusNotFound) || resp.Status == http.StatusBadRequest {
					return
				}
				if d := r.metricDelta(t, "sioproxy_requests_total", `kind="handshake"`); d != 0 && resp.Status == http.StatusOK && r.c.names()[string(resp.Body)] {
					t.Errorf("the proxy counted a handshake for a request the backend took for /__name")
				}
			}},
		{name: "8 percent-encoded sid key", request: get("/socket.io/?EIO=4&transport=polling&%73id=" + forged),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				checkStatus(t, resp, err, http.StatusBadRequest)
				if saw := r.c.backendSaw(forged); saw != "" {
					t.Errorf("the proxy took the request for a handshake and placed it, but it carries a sid: %s", saw)
				}
			}},
		{name: "8 empty sid then a sid", request: get("/socket.io/?EIO=4&transport=polling&sid=&sid=" + forged + "B"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				checkStatus(t, resp, err, http.StatusBadRequest)
				if saw := r.c.backendSaw(forged + "B"); saw != "" {
					t.Errorf("the proxy took the request for a handshake and placed it, but it carries a sid: %s", saw)
				}
			}},
		{name: "8 percent-encoded tag separator", session: true, method: "POST",
			request: func(r *caseRun) []byte {
				return reqBody("POST", pollURL(strings.Replace(r.sid, ".", "%2E", 1)), "6")
			},
			want: wantOK},
		{name: "8 every sid byte percent-encoded", session: true, method: "POST",
			request: func(r *caseRun) []byte { return reqBody("POST", pollURL(percentAll(r.sid)), "6") },
			want:    wantOK},
		{name: "8 sid with a plus sign for a space", request: get(pollURL("a+b")), want: wantSIDUnknown("")},

		// #10: hop-by-hop answers.
		{name: "10 Connection close on the handshake", request: get("/socket.io/?EIO=4&transport=polling", "Connection: close"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				if wantHandshake(t, r, resp, err) != "" {
					oneConnectionClose(t, resp)
				}
			}},
		{name: "10 Connection close on a POST", session: true, method: "POST",
			request: func(r *caseRun) []byte { return reqBody("POST", pollURL(r.sid), "6", "Connection: close") },
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				wantOK(t, r, resp, err)
				if resp != nil {
					oneConnectionClose(t, resp)
				}
			}},
		{name: "10 lowercase connection close on a POST", session: true, method: "POST",
			request: func(r *caseRun) []byte { return reqBody("POST", pollURL(r.sid), "6", "connection: close") },
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				wantOK(t, r, resp, err)
				if resp != nil {
					oneConnectionClose(t, resp)
				}
			}},
		{name: "10 keep-alive answer has no Connection close", session: true, method: "POST",
			request: func(r *caseRun) []byte { return reqBody("POST", pollURL(r.sid), "6") },
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				wantOK(t, r, resp, err)
				if resp != nil && len(resp.Values("Connection")) > 1 {
					t.Errorf("Connection headers %q, want at most one", resp.Values("Connection"))
				}
			}},

		// Framing: Content-Length and Transfer-Encoding.
		{name: "framing Content-Length and Transfer-Encoding", method: "POST", mustClose: true,
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX"),
			want:    wantStatus(http.StatusBadRequest, http.StatusOK)},
		{name: "framing lowercase transfer-encoding and content-length", method: "POST", mustClose: true,
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\ntransfer-encoding: chunked\r\ncontent-length: 6\r\n\r\n0\r\n\r\nX"),
			want:    wantStatus(http.StatusBadRequest, http.StatusOK)},
		{name: "framing Transfer-Encoding not ending in chunked", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nTransfer-Encoding: gzip\r\n\r\nabc"),
			want:    wantStatus(http.StatusBadRequest, http.StatusNotImplemented)},
		{name: "framing Transfer-Encoding xchunked", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
			want:    wantStatus(http.StatusBadRequest, http.StatusNotImplemented)},
		{name: "framing two Transfer-Encoding lines", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n"),
			want:    wantStatus(http.StatusBadRequest, http.StatusNotImplemented)},
		{name: "framing two different Content-Length", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde"),
			want:    wantStatus(http.StatusBadRequest)},
		{name: "framing Content-Length list", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nContent-Length: 3, 5\r\n\r\nabcde"),
			want:    wantStatus(http.StatusBadRequest)},
		{name: "framing negative Content-Length", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nContent-Length: -1\r\n\r\n"),
			want:    wantStatus(http.StatusBadRequest)},
		{name: "framing signed Content-Length", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nContent-Length: +3\r\n\r\nabc"),
			want:    wantStatus(http.StatusBadRequest)},
		{name: "framing bad chunk size", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
			want:    wantStatus(http.StatusBadRequest)},

		// Header syntax.
		{name: "syntax obs-fold", request: lit("GET /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nX-Folded: a\r\n b\r\n\r\n"),
			want: func(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
				// 400, or the fold replaced by spaces before forwarding (RFC 9112 §5.2).
				if !checkStatus(t, resp, err, http.StatusBadRequest, http.StatusOK) || resp.Status != http.StatusOK {
					return
				}
				wantEchoed(func(t *testing.T, e echoed) {
					for i := 0; i+1 < len(e.RawHeaders); i += 2 {
						if strings.TrimSpace(e.RawHeaders[i]) != e.RawHeaders[i] || strings.ContainsAny(e.RawHeaders[i+1], "\r\n") {
							t.Errorf("backend saw a folded header line %q: %q", e.RawHeaders[i], e.RawHeaders[i+1])
						}
					}
					if got := headerLines(e.RawHeaders, "X-Folded"); len(got) != 1 || strings.Join(strings.Fields(got[0]), " ") != "a b" {
						t.Errorf("backend saw X-Folded %q, want one line \"a b\"", got)
					}
				})(t, r, resp, err)
			}},
		{name: "syntax NUL in a header value", request: get("/__headers", "X-Nul: a\x00b"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax control byte in a header value", request: get("/__headers", "X-Ctl: a\x01b"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax DEL in a header value", request: get("/__headers", "X-Del: a\x7fb"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax bare CR in a header value", request: get("/__headers", "X-Cr: a\rb"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax NUL in the target", request: lit("GET /__name\x00x HTTP/1.1\r\nHost: " + hostName + "\r\n\r\n"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax space in the target", request: lit("GET /__name x HTTP/1.1\r\nHost: " + hostName + "\r\n\r\n"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax whitespace before the colon", request: get("/__headers", "X-Space : a"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax space in a header name", request: get("/__headers", "X Space: a"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax header line without a colon", request: get("/__headers", "X-No-Colon"), want: wantStatus(http.StatusBadRequest)},
		{name: "syntax unknown HTTP version", request: lit("GET /__name HTTP/1.7\r\nHost: " + hostName + "\r\n\r\n"),
			want: wantStatus(http.StatusBadRequest, http.StatusHTTPVersionNotSupported)},
		{name: "syntax HTTP/2 preface", request: lit("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
			want: wantStatus(http.StatusBadRequest, http.StatusHTTPVersionNotSupported, http.StatusMethodNotAllowed, http.StatusNotImplemented)},

		// Sizes.
		{name: "size oversized header", request: get("/__name", "X-Big: "+strings.Repeat("a", 20000)),
			want: wantStatus(http.StatusRequestHeaderFieldsTooLarge)},
		{name: "size many headers", request: get("/__name", manyHeaders(300)...),
			want: wantStatus(http.StatusRequestHeaderFieldsTooLarge)},
		{name: "size oversized target", request: get("/__name?x=" + strings.Repeat("a", 20000)),
			want: wantStatus(http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge)},
		{name: "size body over the limit by Content-Length", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nContent-Length: 2000000\r\n\r\n"),
			want:    wantStatus(http.StatusRequestEntityTooLarge)},
		{name: "size polling POST over the limit", session: true, method: "POST",
			request: func(r *caseRun) []byte {
				return []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 1500000\r\n\r\n", pollURL(r.sid), hostName))
			},
			body: func(*caseRun) []byte { return bytes.Repeat([]byte("4"), 1500000) },
			want: wantStatus(http.StatusRequestEntityTooLarge)},
		{name: "size chunked body over the limit", method: "POST",
			request: lit("POST /__headers HTTP/1.1\r\nHost: " + hostName + "\r\nTransfer-Encoding: chunked\r\n\r\n"),
			body:    func(*caseRun) []byte { return chunked(1500000) },
			want:    wantStatus(http.StatusRequestEntityTooLarge)},

		// Upgrades.
		{name: "upgrade without a key", request: get("/socket.io/?EIO=4&transport=websocket", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"),
			want: wantStatus(http.StatusBadRequest)},
		{name: "upgrade with an unknown version", request: get("/socket.io/?EIO=4&transport=websocket", "Upgrade: websocket", "Connection: Upgrade",
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 7"),
			want: wantStatus(http.StatusBadRequest, http.StatusUpgradeRequired)},
		{name: "upgrade header without the Connection token", request: get("/socket.io/?EIO=4&transport=websocket", "Upgrade: websocket",
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"),
			want: wantStatus(http.StatusBadRequest)},
		{name: "upgrade by POST", method: "POST",
			request: lit("POST /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + hostName + "\r\n" + strings.Join(wsHeaders, "\r\n") + "\r\nContent-Length: 0\r\n\r\n"),
			want:    wantStatus(http.StatusBadRequest, http.StatusMethodNotAllowed)},

		// Sids.
		{name: "sid forged untagged", request: get(pollURL(forged)), want: wantSIDUnknown("")},
		{name: "sid forged with a real backend's tag", session: true,
			request: func(r *caseRun) []byte { return req("GET", pollURL(r.sid[:5]+forged)) },
			want:    wantSIDUnknown("")},
		{name: "sid forged with a real tag and a wrong check char", session: true,
			request: func(r *caseRun) []byte { return req("GET", pollURL(flipCheck(r.sid))) },
			want:    wantSIDUnknown("")},
		{name: "sid forged on a POST", session: true, method: "POST",
			request: func(r *caseRun) []byte { return reqBody("POST", pollURL(r.sid[:5]+forged), "6") },
			want:    wantSIDUnknown("")},
		{name: "sid forged on an upgrade", session: true,
			request: func(r *caseRun) []byte {
				return req("GET", "/socket.io/?EIO=4&transport=websocket&sid="+r.sid[:5]+forged, wsHeaders...)
			},
			want: wantStatus(http.StatusBadRequest)},
		{name: "sid over-long untagged", request: get(pollURL(longSID)),
			want: wantStatus(http.StatusBadRequest, http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge)},
		{name: "sid over-long with a real tag", session: true,
			request: func(r *caseRun) []byte { return req("GET", pollURL(r.sid[:5]+longSID)) },
			want:    wantStatus(http.StatusBadRequest, http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge)},
		{name: "sid of a closed session", session: true,
			request: func(r *caseRun) []byte {
				sid := r.sid
				r.sid = ""
				closeSessionQuiet(r, sid)
				return req("GET", pollURL(sid))
			},
			want: wantSIDUnknown("")},

		// #11: the admin API refuses cross-site requests.
		{name: "11 admin drain with a foreign Origin", admin: true,
			request: lit("POST /backends/h1/drain HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.test\r\nContent-Length: 0\r\n\r\n"),
			want:    wantAdminRefused},
		{name: "11 admin drain by form POST", admin: true,
			request: lit("POST /backends/h1/drain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\nx=1"),
			want:    wantAdminRefused},
		{name: "11 admin reload with a foreign lowercase origin", admin: true,
			request: lit("POST /reload HTTP/1.1\r\nHost: 127.0.0.1\r\norigin: http://evil.test\r\nContent-Length: 0\r\n\r\n"),
			want:    wantStatus(http.StatusForbidden)},
	}
}

// wantWebSocketOpen accepts a 101 with the WebSocket headers, followed by Engine.IO's open packet.
func wantWebSocketOpen(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
	t.Helper()
	if !checkStatus(t, resp, err, http.StatusSwitchingProtocols) {
		return
	}
	if got := resp.Values("Upgrade"); len(got) != 1 || !strings.EqualFold(got[0], "websocket") {
		t.Errorf("101 with Upgrade %q, want [websocket] (head %q)", got, resp.Head)
	}
	if got := resp.Get("Sec-WebSocket-Accept"); got != wsAccept {
		t.Errorf("101 with Sec-WebSocket-Accept %q, want %q", got, wsAccept)
	}
	// The first frame: a text frame carrying the open packet of a WebSocket-only session.
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer r.conn.SetReadDeadline(time.Time{})
	var hdr [2]byte
	if _, err := io.ReadFull(r.conn.Reader(), hdr[:]); err != nil {
		t.Errorf("no WebSocket frame after the 101: %v", err)
		return
	}
	n := int(hdr[1] & 0x7f)
	if hdr[0] != 0x81 || n >= 126 {
		t.Errorf("first frame header % x, want a short unmasked text frame", hdr)
		return
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r.conn.Reader(), payload); err != nil || !bytes.HasPrefix(payload, []byte(`0{"sid"`)) {
		t.Errorf("first frame %q (%v), want the open packet", testkit.RedactSIDs(string(payload)), err)
	}
}

// wantOK accepts Engine.IO's answer to a POST: 200 "ok".
func wantOK(t *testing.T, _ *caseRun, resp *testkit.RawResponse, err error) {
	t.Helper()
	if checkStatus(t, resp, err, http.StatusOK) && string(resp.Body) != "ok" {
		t.Errorf("body %q, want \"ok\"", resp.Body)
	}
}

// wantAdminRefused accepts 403 and checks that the backend was not drained.
// A form body gets 415 (the admin API takes no body), a foreign origin 403: both refuse it.
func wantAdminRefused(t *testing.T, r *caseRun, resp *testkit.RawResponse, err error) {
	t.Helper()
	checkStatus(t, resp, err, http.StatusForbidden, http.StatusUnsupportedMediaType)
	if s := r.px.Backends(t)["h1"]; s.State != "active" {
		t.Errorf("backend h1 is %q after a cross-site request, want active", s.State)
	}
}

// reqBody is a request with a text body and its Content-Length.
func reqBody(method, target, body string, headers ...string) []byte {
	h := append([]string{"Content-Type: text/plain;charset=UTF-8", fmt.Sprintf("Content-Length: %d", len(body))}, headers...)
	return append(req(method, target, h...), body...)
}

// percentAll percent-encodes every byte of s.
func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// flipCheck changes the check character of a tagged sid, so that it no longer parses as tagged.
func flipCheck(sid string) string {
	b := []byte(sid)
	if b[3] == 'A' {
		b[3] = 'B'
	} else {
		b[3] = 'A'
	}
	return string(b)
}

func manyHeaders(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("X-H%03d: %s", i, strings.Repeat("v", 60))
	}
	return out
}

// chunked is a chunked body of n bytes in 16 KiB chunks, with its last chunk.
func chunked(n int) []byte {
	var b bytes.Buffer
	chunk := bytes.Repeat([]byte("a"), 16384)
	for n > 0 {
		c := chunk[:min(n, len(chunk))]
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
		n -= len(c)
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// closeSessionQuiet closes a session through the proxy, ignoring the answer.
func closeSessionQuiet(r *caseRun, sid string) {
	resp, err := httpClient.Post(r.px.URL()+pollURL(url.QueryEscape(sid)), "text/plain;charset=UTF-8", strings.NewReader("1"))
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
