package testkit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// RawBackend is an HTTP peer in the test process that answers with bytes the test writes itself:
// what no real server sends (a 101 to a plain request, a lying Content-Length, a reset after reading
// a request). Each connection is handled by the test's function, in its own goroutine.
type RawBackend struct {
	ln net.Listener

	mu       sync.Mutex
	conns    int
	closed   map[int]time.Time // connection id -> when the peer (the proxy) closed it
	requests []RawRequest
	wg       sync.WaitGroup
}

// RawRequest is one request a RawBackend read.
type RawRequest struct {
	Conn   int // id of the connection it came on, from 1
	Method string
	URI    string
	Header http.Header
	Body   []byte
	At     time.Time
}

// RawBackendConn is one accepted connection of a RawBackend.
type RawBackendConn struct {
	net.Conn
	ID int
	Br *bufio.Reader
	b  *RawBackend
}

// StartRawBackend listens on a free loopback port and calls handle for every connection; the
// connection is closed when handle returns, and the listener when the test ends.
func StartRawBackend(t testing.TB, handle func(c *RawBackendConn)) *RawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("raw backend: %v", err)
	}
	b := &RawBackend{ln: ln, closed: map[int]time.Time{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns++
			id := b.conns
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				handle(&RawBackendConn{Conn: c, ID: id, Br: bufio.NewReader(c), b: b})
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
	})
	return b
}

// Addr is the backend's host:port.
func (b *RawBackend) Addr() string { return b.ln.Addr().String() }

// URL is the backend's base URL.
func (b *RawBackend) URL() string { return "http://" + b.Addr() }

// Conns is how many connections the backend accepted.
func (b *RawBackend) Conns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns
}

// Requests returns the requests read so far.
func (b *RawBackend) Requests() []RawRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]RawRequest(nil), b.requests...)
}

// ClosedAt reports when the peer closed connection id (see RawBackendConn.WaitPeerClose).
func (b *RawBackend) ClosedAt(id int) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	at, ok := b.closed[id]
	return at, ok
}

// ReadRequest reads one request (head and body) and records it.
func (c *RawBackendConn) ReadRequest() (*RawRequest, error) {
	req, err := http.ReadRequest(c.Br)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	r := RawRequest{Conn: c.ID, Method: req.Method, URI: req.RequestURI, Header: req.Header, Body: body, At: time.Now()}
	c.b.mu.Lock()
	c.b.requests = append(c.b.requests, r)
	c.b.mu.Unlock()
	return &r, nil
}

// Reply writes a complete response: status line, headers (each "Name: value") and a body with its
// Content-Length.
func (c *RawBackendConn) Reply(status string, body string, headers ...string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %s\r\n", status)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	_, err := c.Write(b.Bytes())
	return err
}

// Reset closes the connection with a TCP RST (SO_LINGER 0) instead of a FIN.
func (c *RawBackendConn) Reset() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// WaitPeerClose reads and discards until the peer closes the connection or timeout passes; it
// records the close (RawBackend.ClosedAt) and returns the bytes that came before it.
func (c *RawBackendConn) WaitPeerClose(timeout time.Duration) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.Br.Read(buf)
		got = append(got, buf[:n]...)
		if err == nil {
			continue
		}
		if isTimeout(err) {
			return got, fmt.Errorf("peer kept the connection open for %v", timeout)
		}
		c.b.mu.Lock()
		c.b.closed[c.ID] = time.Now()
		c.b.mu.Unlock()
		return got, nil
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
