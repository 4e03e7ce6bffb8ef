package testkit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
)

// RawConn is a client connection that writes bytes exactly as given and reads responses without
// normalising them: what a broken client or an attacker sends, and what it gets back.
type RawConn struct {
	net.Conn
	br *bufio.Reader
}

// DialRaw connects to addr from the default loopback source.
func DialRaw(addr string) (*RawConn, error) { return DialRawFrom("", addr) }

// DialRawFrom connects to addr from the local IP local ("" = any), e.g. "127.0.0.2".
func DialRawFrom(local, addr string) (*RawConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &RawConn{Conn: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Reader is the connection's buffered reader (bytes after a response, e.g. WebSocket frames).
func (c *RawConn) Reader() *bufio.Reader { return c.br }

// Send writes b within timeout.
func (c *RawConn) Send(b []byte, timeout time.Duration) error {
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.Write(b)
	return err
}

// RawResponse is one response as read off a RawConn.
type RawResponse struct {
	Proto     string // "HTTP/1.1"
	Status    int
	Head      []byte               // status line and header lines as received, through the blank line
	Header    textproto.MIMEHeader // names canonicalised; every line kept, in order
	Body      []byte
	Trailer   textproto.MIMEHeader // chunked trailers
	Truncated bool                 // the body was longer than the read limit
}

// Values returns every value of header name (one per header line).
func (r *RawResponse) Values(name string) []string { return r.Header.Values(name) }

// Get is the first value of header name.
func (r *RawResponse) Get(name string) string { return r.Header.Get(name) }

// KeepsOpen reports whether the response lets the client send another request on the connection.
func (r *RawResponse) KeepsOpen() bool {
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "close") {
				return false
			}
		}
	}
	return r.Proto == "HTTP/1.1" && r.Status != 101
}

// String is a short description for messages: the head and the start of the body, sids redacted.
func (r *RawResponse) String() string {
	body := r.Body
	if len(body) > 200 {
		body = body[:200]
	}
	return fmt.Sprintf("%q + body %q", RedactSIDs(string(r.Head)), RedactSIDs(string(body)))
}

// MaxRawBody bounds the body ReadResponse keeps; the rest is discarded and Truncated set.
const MaxRawBody = 8 << 20

// ReadResponse reads one response within timeout. method is the request's method (a HEAD response
// has no body). Bodies are framed as RFC 9112 says: none for 1xx, 204, 304 and HEAD, chunked,
// Content-Length, else until the server closes.
func (c *RawConn) ReadResponse(method string, timeout time.Duration) (*RawResponse, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	r := &RawResponse{}
	for {
		line, err := c.br.ReadSlice('\n')
		r.Head = append(r.Head, line...)
		if err != nil {
			if len(r.Head) == 0 && errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return r, fmt.Errorf("reading the response head (%q so far): %w", r.Head, err)
		}
		if len(r.Head) > 1<<20 {
			return r, errors.New("response head over 1 MiB")
		}
		if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) {
			break
		}
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(r.Head)))
	status, err := tp.ReadLine()
	if err != nil {
		return r, err
	}
	proto, rest, _ := strings.Cut(status, " ")
	code, _, _ := strings.Cut(rest, " ")
	r.Proto = proto
	if r.Status, err = strconv.Atoi(code); err != nil {
		return r, fmt.Errorf("bad status line %q", status)
	}
	if r.Header, err = tp.ReadMIMEHeader(); err != nil && !errors.Is(err, io.EOF) {
		return r, fmt.Errorf("bad response header: %w", err)
	}
	if r.Header == nil {
		r.Header = textproto.MIMEHeader{}
	}
	switch {
	case r.Status < 200 || r.Status == 204 || r.Status == 304 || method == "HEAD":
		return r, nil
	case strings.EqualFold(r.Header.Get("Transfer-Encoding"), "chunked"):
		r.Body, r.Truncated, err = readLimited(httputil.NewChunkedReader(c.br))
		if err != nil {
			return r, fmt.Errorf("chunked body: %w", err)
		}
		// The chunked reader stops after the last chunk's size line: trailers and the blank line follow.
		ttp := textproto.NewReader(c.br)
		if r.Trailer, err = ttp.ReadMIMEHeader(); err != nil && !errors.Is(err, io.EOF) {
			return r, fmt.Errorf("trailers: %w", err)
		}
		return r, nil
	case r.Header.Get("Content-Length") != "":
		n, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
		if err != nil || n < 0 {
			return r, fmt.Errorf("bad Content-Length %q", r.Header.Get("Content-Length"))
		}
		r.Body, r.Truncated, err = readLimited(io.LimitReader(c.br, n))
		if err == nil && !r.Truncated && int64(len(r.Body)) < n {
			err = io.ErrUnexpectedEOF
		}
		return r, err
	default:
		r.Body, r.Truncated, err = readLimited(c.br)
		return r, err
	}
}

func readLimited(rd io.Reader) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(rd, MaxRawBody))
	if err != nil {
		return b, false, err
	}
	if len(b) < MaxRawBody {
		return b, false, nil
	}
	n, err := io.Copy(io.Discard, rd)
	return b, n > 0, err
}

// WaitClosed reads until the peer closes the connection or timeout passes; it returns the bytes
// read before the close, and an error when the connection is still open at the timeout.
func (c *RawConn) WaitClosed(timeout time.Duration) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := c.br.Read(buf)
		got = append(got, buf[:n]...)
		if len(got) > 1<<20 {
			got = got[len(got)-(1<<20):]
		}
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got, fmt.Errorf("connection still open after %v", timeout)
		}
		return got, nil // EOF or reset: closed
	}
}
