package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"sioproxy/proxy"
	"sioproxy/test/testkit"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

// handshake opens a v4 polling session through base and returns the sid the client sees.
func handshake(t *testing.T, base string) string {
	t.Helper()
	resp, err := httpClient.Get(base + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(body) == 0 || body[0] != '0' {
		t.Fatalf("handshake: %d %q", resp.StatusCode, testkit.RedactSIDs(string(body)))
	}
	var open struct {
		SID string `json:"sid"`
	}
	payload := body[1:]
	if i := bytes.IndexByte(payload, 0x1e); i >= 0 {
		payload = payload[:i]
	}
	if err := json.Unmarshal(payload, &open); err != nil || open.SID == "" {
		t.Fatalf("handshake: open packet %q: %v", testkit.RedactSIDs(string(body)), err)
	}
	return open.SID
}

// TestUnknownSessionErrors checks that unknown sids get Engine.IO's own answer (400, JSON code 1) with
// CORS headers a browser accepts, whether the proxy or the backend decides.
func TestUnknownSessionErrors(t *testing.T) {
	bs := testkit.StartBackends(t, 3, "e%d", "4")
	px := startProxy(t, "sioproxy", "", testkit.BackendURLs(bs))
	tagged := handshake(t, px.URL())
	if _, ok := testkit.RawSID(tagged); !ok {
		t.Fatalf("handshake sid (sid_hash %s) is not tagged", proxy.SIDHash(tagged))
	}
	const origin = "http://app.example.test"
	cases := []struct{ name, sid string }{
		{"untagged", "AAAAAAAAAAAAAAAAAAAA"},
		{"tagged by a real backend, unknown there", tagged[:5] + "zzzzzzzzzzzzzzzzzzzz"},
		{"tag with a wrong check char", flipCheck(tagged)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, px.URL()+"/socket.io/?EIO=4&transport=polling&sid="+c.sid, nil)
			req.Header.Set("Origin", origin)
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", testkit.RedactURLError(err))
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400 (body %q)", resp.StatusCode, body)
			}
			var e struct {
				Code    *int   `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Code == nil || *e.Code != 1 || e.Message != "Session ID unknown" {
				t.Errorf("body %q, want {\"code\":1,\"message\":\"Session ID unknown\"}", body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != origin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, origin)
			}
			if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("Access-Control-Allow-Credentials %q, want true", got)
			}
		})
	}
}

// flipCheck returns sid with its check character changed, so it no longer parses as tagged.
func flipCheck(sid string) string {
	b := []byte(sid)
	if b[3] == 'A' {
		b[3] = 'B'
	} else {
		b[3] = 'A'
	}
	return string(b)
}

// TestOversizedBody checks that a polling POST over 1 MB gets 413 rather than a dropped connection.
func TestOversizedBody(t *testing.T) {
	bs := testkit.StartBackends(t, 1, "big%d", "4")
	px := startProxy(t, "sioproxy", "", testkit.BackendURLs(bs))
	sid := handshake(t, px.URL())
	status, err := postRaw(px.Addr, "/socket.io/?EIO=4&transport=polling&sid="+sid, 1_500_000)
	if err != nil {
		t.Fatalf("POST 1.5 MB: %v", err)
	}
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("POST 1.5 MB: status %d, want 413", status)
	}
}

// postRaw sends a POST with a body of n bytes over a raw connection, writing the body concurrently so
// an early answer is read even when the server stops reading, and returns the response status.
func postRaw(addr, path string, n int) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n", path, addr, n)
	if _, err := io.WriteString(conn, head); err != nil {
		return 0, err
	}
	go func() {
		body := bytes.Repeat([]byte("4"), n)
		_, _ = conn.Write(body) // may fail once the server has answered and closed
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestAllBackendsDown checks that a handshake with no reachable backend gets 502 or 503 at once.
func TestAllBackendsDown(t *testing.T) {
	dead := []string{
		fmt.Sprintf("http://127.0.0.1:%d", testkit.FreePort(t)),
		fmt.Sprintf("http://127.0.0.1:%d", testkit.FreePort(t)),
	}
	px := startProxy(t, "sioproxy", "", dead)
	resp, err := httpClient.Get(px.URL() + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 502 or 503", resp.StatusCode)
	}
}

// TestOtherPaths checks that non-Engine.IO paths are proxied too.
func TestOtherPaths(t *testing.T) {
	bs := testkit.StartBackends(t, 2, "o%d", "4")
	px := startProxy(t, "sioproxy", "", testkit.BackendURLs(bs))
	resp, err := httpClient.Get(px.URL() + "/__name")
	if err != nil {
		t.Fatalf("GET /__name: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || (string(body) != bs[0].Name && string(body) != bs[1].Name) {
		t.Errorf("GET /__name: %d %q, want 200 and a backend name", resp.StatusCode, body)
	}
}
