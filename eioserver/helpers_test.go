package eioserver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// startServer runs srv on a real fasthttp server at 127.0.0.1:0 and returns its base URL
// ("http://127.0.0.1:port"); setup runs before serving. Cleanup closes both.
func startServer(t *testing.T, opts Options, setup ...func(*Server)) (*Server, string) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	srv := New(opts)
	for _, f := range setup {
		f(srv)
	}
	l, err := srv.Listen("127.0.0.1:0", "eioserver")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return srv, l.URL
}

// testCtx returns a context bounded by a generous deadline, so a broken exchange fails, not hangs.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type httpResult struct {
	status int
	ctype  string
	body   string
}

// do performs one HTTP request and reads the whole answer.
func do(t *testing.T, method, url, body string, hdr ...string) httpResult {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(testCtx(t), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpResult{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: string(b)}
}

// handshake opens a polling session and returns its sid.
func handshake(t *testing.T, base string) string {
	t.Helper()
	res := do(t, "GET", base+"/socket.io/?EIO=4&transport=polling&t=x", "")
	if res.status != 200 || !strings.HasPrefix(res.body, `0{"sid":"`) {
		t.Fatalf("handshake: %d %q", res.status, res.body)
	}
	sid := strings.TrimPrefix(res.body, `0{"sid":"`)
	return sid[:strings.IndexByte(sid, '"')]
}

// closeWatcher records session ends reported by the server.
type closeWatcher chan [2]string

// watch returns a setup function making srv report every session end on w.
func (w closeWatcher) watch(srv *Server) {
	srv.onClose = func(sid, reason string) {
		select {
		case w <- [2]string{sid, reason}:
		default:
		}
	}
}

// expect waits for sid to close and returns the reason.
func (w closeWatcher) expect(t *testing.T, sid string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-w:
			if c[0] == sid {
				return c[1]
			}
		case <-timeout:
			t.Fatalf("session %s did not close", sid)
		}
	}
}

// pollWatcher reports sids whose GET started waiting.
type pollWatcher chan string

func (w pollWatcher) watch(srv *Server) {
	srv.onPollWait = func(sid string) {
		select {
		case w <- sid:
		default:
		}
	}
}

// expect waits until a GET of sid is pending.
func (w pollWatcher) expect(t *testing.T, sid string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-w:
			if s == sid {
				return
			}
		case <-timeout:
			t.Fatalf("no pending GET for %s", sid)
		}
	}
}
