package upstream

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// TestSSEOutlivesWriteTimeout (#9): a server-sent-events stream of 35 s, longer than the 30 s write
// timeout of ordinary answers, keeps flowing to its end.
func TestSSEOutlivesWriteTimeout(t *testing.T) {
	t.Parallel()
	bs := testkit.StartBackends(t, 1, "sse%d", "4")
	px := startProxy(t, entries(bs), "")
	start := time.Now()
	resp, err := http.Get(px.URL() + "/__sse?ms=35000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	events, ended := 0, false
	for sc.Scan() {
		switch l := sc.Text(); {
		case strings.HasPrefix(l, "data: done"):
			ended = true
		case strings.HasPrefix(l, "data: "):
			events++
		}
	}
	took := time.Since(start)
	if !ended || events < 35 {
		t.Errorf("SSE stream: %d events in %v, end seen %v (read error %v); want the whole 35 s stream (>= 35 events and its end)",
			events, took.Round(time.Millisecond), ended, sc.Err())
	}
	assertAlive(t, px)
}

// patternWriter checks that byte i of what it is written is i % 251 (backend.js /__download).
type patternWriter struct {
	n   int64
	bad int64 // offset of the first wrong byte, -1 while none
}

func (w *patternWriter) Write(p []byte) (int, error) {
	for i, c := range p {
		if c != byte((w.n+int64(i))%251) && w.bad < 0 {
			w.bad = w.n + int64(i)
		}
	}
	w.n += int64(len(p))
	return len(p), nil
}

// TestLargeDownloadBoundedMemory (#9): a 512 MiB download with a Content-Length streams through the
// proxy, placed by the balancer or pinned by the affinity cookie: the bytes arrive intact, and the
// proxy's peak resident memory grows by far less than the size of the body.
func TestLargeDownloadBoundedMemory(t *testing.T) {
	t.Parallel()
	for _, route := range []string{"placed", "affinity cookie"} {
		t.Run(route, func(t *testing.T) {
			const size = 512 << 20
			const bound = 64 << 20
			bs := testkit.StartBackends(t, 1, "dl%d", "4")
			px := startProxy(t, entries(bs), "sticky:\n  cookie: sioaff\n")
			cookie := ""
			if route == "affinity cookie" {
				cookie = affinityCookie(t, px)
			}
			rss0, err := testkit.ProcMemKB(px.Pid(), "VmRSS")
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/__download?bytes=%d", px.URL(), size), nil)
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			client := &http.Client{Timeout: 3 * time.Minute}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			w := &patternWriter{bad: -1}
			_, err = io.Copy(w, resp.Body)
			hwm, herr := testkit.ProcMemKB(px.Pid(), "VmHWM")
			if herr != nil {
				t.Fatal(herr)
			}
			if err != nil || w.n != size || w.bad >= 0 || resp.ContentLength != size {
				t.Errorf("download: %d of %d bytes (Content-Length %d), first wrong byte at %d, error %v", w.n, size, resp.ContentLength, w.bad, err)
			}
			growth := (hwm - rss0) << 10
			t.Logf("proxy resident %d MiB before, peak %d MiB during a %d MiB download", rss0>>10, hwm>>10, size>>20)
			if growth > bound {
				t.Errorf("the proxy's peak resident memory grew by %d MiB for a %d MiB download; want < %d MiB (stream, don't buffer)", growth>>20, size>>20, bound>>20)
			}
			assertAlive(t, px)
		})
	}
}

// affinityCookie makes a first request on another path and returns the affinity cookie the proxy
// set ("name=value"), which pins the next ones to the same backend.
func affinityCookie(t *testing.T, px *testkit.Proxy) string {
	t.Helper()
	resp, err := http.Get(px.URL() + "/__name")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "sioaff" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no affinity cookie set: %v", resp.Header)
	return ""
}

// TestHugeBackendContentLength (#9): a backend announces a Content-Length of 2^48 and sends five
// bytes. The proxy must not allocate it nor panic: the client gets an error (a 5xx, or a body cut
// short of its length), and the process serves the next request.
func TestHugeBackendContentLength(t *testing.T) {
	raw := testkit.StartRawBackend(t, func(c *testkit.RawBackendConn) {
		r, err := c.ReadRequest()
		if err != nil {
			return
		}
		if r.URI == "/ok" {
			_ = c.Reply("200 OK", "fine", "Connection: close")
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 281474976710656\r\n\r\nhello"))
	})
	for _, target := range []string{"/big", "/socket.io/?EIO=4&transport=polling"} {
		t.Run(target, func(t *testing.T) {
			px := startProxy(t, []backendEntry{{id: "raw", url: raw.URL()}}, "")
			conn, err := testkit.DialRaw(px.Addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.Send([]byte("GET "+target+" HTTP/1.1\r\nHost: big.test\r\n\r\n"), 3*time.Second)
			resp, err := conn.ReadResponse(http.MethodGet, 10*time.Second)
			conn.Close()
			switch {
			case resp == nil && errors.Is(err, io.EOF):
				t.Errorf("the connection closed without an answer; want an error status")
			case resp != nil && resp.Status >= 500:
			case resp != nil && resp.Status == http.StatusOK && err != nil:
				// streamed, then cut short of the announced length: the client sees the error
			default:
				t.Errorf("answer %v %v; want a 5xx or a body cut short", resp, err)
			}
			if !testkit.WaitFor(time.Second, func() bool { return px.Exited() }) {
				conn, err := testkit.DialRaw(px.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.Send([]byte("GET /ok HTTP/1.1\r\nHost: big.test\r\n\r\n"), 3*time.Second)
				if resp, err := conn.ReadResponse(http.MethodGet, 10*time.Second); err != nil || resp.Status != http.StatusOK {
					t.Errorf("next request: %v %v; want 200", resp, err)
				}
			} else {
				t.Errorf("the proxy exited after a backend announced a Content-Length of 2^48: %v\n%s", px.Err(), fatalLines(px))
			}
			assertAlive(t, px)
		})
	}
}

// fatalLines returns the proxy's Go runtime error lines (fatal error, panic), if any.
func fatalLines(px *testkit.Proxy) string {
	var out []string
	for _, l := range px.Texts(0) {
		if strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "panic") || strings.HasPrefix(l, "runtime:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestChunkedTrailersForwarded (#9): a chunked answer's trailer fields reach the client, as
// trailers or merged into the headers, whether the answer is streamed (placed by the balancer) or
// read whole (pinned by the affinity cookie).
func TestChunkedTrailersForwarded(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "tr%d", "4")
	px := startProxy(t, entries(bs), "sticky:\n  cookie: sioaff\n")
	for _, route := range []string{"placed", "affinity cookie"} {
		t.Run(route, func(t *testing.T) {
			extra := ""
			if route == "affinity cookie" {
				extra = "Cookie: " + affinityCookie(t, px) + "\r\n"
			}
			conn, err := testkit.DialRaw(px.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.Send([]byte("GET /__trailers HTTP/1.1\r\nHost: tr.test\r\nTE: trailers\r\n"+extra+"\r\n"), 3*time.Second)
			resp, err := conn.ReadResponse(http.MethodGet, 10*time.Second)
			if err != nil {
				t.Fatalf("GET /__trailers: %v", err)
			}
			if resp.Status != http.StatusOK || string(resp.Body) != "part one, part two" {
				t.Errorf("GET /__trailers: %s", resp)
			}
			got := resp.Get("X-Checksum")
			if got == "" && resp.Trailer != nil {
				got = resp.Trailer.Get("X-Checksum")
			}
			if got != "c0ffee" {
				t.Errorf("X-Checksum %q in headers or trailers, want c0ffee (head %q, trailers %v)", got, resp.Head, resp.Trailer)
			}
			t.Logf("head %q, trailers %v", resp.Head, resp.Trailer)
		})
	}
	assertAlive(t, px)
}

// TestRequestTrailersForwarded (#9): a client's chunked request body with a trailer field: the
// backend gets the body and the field, as a trailer or merged into the headers.
func TestRequestTrailersForwarded(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "rtr%d", "4")
	px := startProxy(t, entries(bs), "")
	conn, err := testkit.DialRaw(px.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.Send([]byte("POST /__headers HTTP/1.1\r\nHost: tr.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"+
		"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n"), 3*time.Second)
	resp, err := conn.ReadResponse(http.MethodPost, 10*time.Second)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("POST /__headers: %v %v", resp, err)
	}
	var e struct {
		RawHeaders  []string `json:"rawHeaders"`
		RawTrailers []string `json:"rawTrailers"`
		BodyBytes   int      `json:"bodyBytes"`
	}
	if err := json.Unmarshal(resp.Body, &e); err != nil {
		t.Fatalf("echo %q: %v", resp.Body, err)
	}
	found := ""
	for _, kv := range [][]string{e.RawHeaders, e.RawTrailers} {
		for i := 0; i+1 < len(kv); i += 2 {
			if strings.EqualFold(kv[i], "X-Sum") {
				found = kv[i+1]
			}
		}
	}
	if e.BodyBytes != 5 || found != "42" {
		t.Errorf("backend got %d body bytes and X-Sum %q; want 5 and \"42\" (headers %q, trailers %q)", e.BodyBytes, found, e.RawHeaders, e.RawTrailers)
	}
	assertAlive(t, px)
}
