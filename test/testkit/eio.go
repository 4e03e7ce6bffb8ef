package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// EIOClient drives Engine.IO v4 polling sessions request by request, for tests that must control
// each request (abort a pending GET, replay a sid, forge one). Real sessions are the job of
// clients.js.
type EIOClient struct {
	Base string // e.g. http://127.0.0.1:8080
	Path string // Engine.IO path; default /socket.io/
	HTTP *http.Client
}

// NewEIOClient returns a client with its own keep-alive connection pool.
func NewEIOClient(base string) *EIOClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	return &EIOClient{Base: base, HTTP: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// CloseIdle closes the client's idle pooled connections.
func (c *EIOClient) CloseIdle() { c.HTTP.CloseIdleConnections() }

func (c *EIOClient) url(sid string) string {
	p := c.Path
	if p == "" {
		p = "/socket.io/"
	}
	u := c.Base + p + "?EIO=4&transport=polling"
	if sid != "" {
		u += "&sid=" + url.QueryEscape(sid)
	}
	return u
}

// Handshake opens a session and returns the sid the client sees (tagged by the proxy).
func (c *EIOClient) Handshake(ctx context.Context) (string, error) {
	status, body, err := c.do(ctx, http.MethodGet, c.url(""), "")
	if err != nil {
		return "", fmt.Errorf("handshake: %w", err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("handshake: status %d %q", status, RedactSIDs(body))
	}
	return OpenSID(body)
}

// OpenSID reads the sid of a v4 open packet (the first packet of a handshake body).
func OpenSID(body string) (string, error) {
	first, _, _ := strings.Cut(body, "\x1e")
	if !strings.HasPrefix(first, "0") {
		return "", fmt.Errorf("not an open packet: %q", RedactSIDs(body))
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(first[1:]), &open); err != nil || open.SID == "" {
		return "", fmt.Errorf("open packet %q: %v", RedactSIDs(body), err)
	}
	return open.SID, nil
}

// Post sends a polling POST with payload and returns the answer.
func (c *EIOClient) Post(ctx context.Context, sid, payload string) (int, string, error) {
	return c.do(ctx, http.MethodPost, c.url(sid), payload)
}

// Get sends a polling GET (it waits until the server has packets or pings).
func (c *EIOClient) Get(ctx context.Context, sid string) (int, string, error) {
	return c.do(ctx, http.MethodGet, c.url(sid), "")
}

// Connect does the Socket.IO CONNECT of the main namespace on a fresh session: it posts "40" and
// reads the server's CONNECT answer.
func (c *EIOClient) Connect(ctx context.Context, sid string) error {
	if st, body, err := c.Post(ctx, sid, "40"); err != nil || st != http.StatusOK {
		return fmt.Errorf("POST 40: %d %q %v", st, body, err)
	}
	st, body, err := c.Get(ctx, sid)
	if err != nil || st != http.StatusOK || !strings.HasPrefix(body, "40") {
		return fmt.Errorf("GET after 40: %d %q %v", st, body, err)
	}
	return nil
}

// Close ends a session with a close packet.
func (c *EIOClient) Close(ctx context.Context, sid string) error {
	st, body, err := c.Post(ctx, sid, "1")
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return fmt.Errorf("close: status %d %q", st, body)
	}
	return nil
}

func (c *EIOClient) do(ctx context.Context, method, u, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, "", RedactURLError(err) // the error names the URL, whose query carries the sid
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(bytes.TrimSpace(b)), err
}
