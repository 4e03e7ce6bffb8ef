package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sioproxy/balancer"
)

// rawBackend is an HTTP/1.1 backend for unit tests that need the bytes on the wire: it records
// every request head exactly as received and answers as its handler scripts (including answers no
// real server gives: a 101 to a plain request, a hang, a close without an answer).
type rawBackend struct {
	ln     net.Listener
	addr   string
	handle func(r *rawReq) rawAnswer

	mu     sync.Mutex
	reqs   []*rawReq
	conns  atomic.Int64  // accepted connections
	closed chan *rawReq  // Hang requests whose connection the proxy closed
	live   []net.Conn    // for stop
	nreq   atomic.Int64  // requests read
	gotReq chan struct{} // one tick per request read
}

// rawReq is one request as the backend read it.
type rawReq struct {
	Line     string      // request line
	Head     string      // header lines as received, without the request line and the blank line
	Fields   [][2]string // header fields as received (name case kept), in order
	Body     []byte
	Conn     int64 // which accepted connection (1-based)
	ConnUses int   // requests on that connection so far, this one included
	closedAt time.Time
}

// target is the request-target of the request line.
func (r *rawReq) target() string {
	f := strings.Fields(r.Line)
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

// query is the decoded query of the request-target, as a Node server reads it.
func (r *rawReq) query() url.Values {
	_, q, _ := strings.Cut(r.target(), "?")
	v, _ := url.ParseQuery(q)
	return v
}

// values returns the values of every field named name (case-insensitively).
func (r *rawReq) values(name string) []string {
	var out []string
	for _, f := range r.Fields {
		if strings.EqualFold(f[0], name) {
			out = append(out, f[1])
		}
	}
	return out
}

// rawAnswer scripts the backend's answer to one request.
type rawAnswer struct {
	Resp  string        // bytes written back
	Close bool          // close the connection after Resp
	Hang  bool          // write nothing and wait until the peer closes the connection
	Delay time.Duration // wait this long before writing Resp
	// Stream, when set, writes the answer itself (after Resp); the connection closes afterwards.
	Stream func(w io.Writer)
}

func okAnswer(body string) rawAnswer {
	return rawAnswer{Resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body}
}

func startRawBackend(t testing.TB, handle func(r *rawReq) rawAnswer) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if handle == nil {
		handle = func(*rawReq) rawAnswer { return okAnswer("raw") }
	}
	b := &rawBackend{ln: ln, addr: ln.Addr().String(), handle: handle, closed: make(chan *rawReq, 1024), gotReq: make(chan struct{}, 1024)}
	go b.accept()
	t.Cleanup(b.stop)
	return b
}

func (b *rawBackend) spec(id string) balancer.Spec {
	return balancer.Spec{ID: id, Addr: b.addr, Weight: 1, State: balancer.Active, Source: "static"}
}

func (b *rawBackend) stop() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.live {
		c.Close()
	}
	b.mu.Unlock()
}

func (b *rawBackend) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		n := b.conns.Add(1)
		b.mu.Lock()
		b.live = append(b.live, c)
		b.mu.Unlock()
		go b.serve(c, n)
	}
}

func (b *rawBackend) serve(c net.Conn, connIdx int64) {
	defer c.Close()
	br := bufio.NewReader(c)
	uses := 0
	for {
		r, err := readRawRequest(br)
		if err != nil {
			return
		}
		uses++
		r.Conn, r.ConnUses = connIdx, uses
		b.mu.Lock()
		b.reqs = append(b.reqs, r)
		b.mu.Unlock()
		b.nreq.Add(1)
		select {
		case b.gotReq <- struct{}{}:
		default:
		}
		a := b.handle(r)
		if a.Hang {
			io.Copy(io.Discard, br) // until the proxy closes its side
			r.closedAt = time.Now()
			b.closed <- r
			return
		}
		if a.Delay > 0 {
			time.Sleep(a.Delay)
		}
		if _, err := io.WriteString(c, a.Resp); err != nil || a.Close {
			return
		}
		if a.Stream != nil {
			a.Stream(c)
			return
		}
	}
}

// readRawRequest reads one request: the head byte-exact, the body by Content-Length or chunked.
func readRawRequest(br *bufio.Reader) (*rawReq, error) {
	r := &rawReq{}
	var head bytes.Buffer
	first := true
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if first {
			r.Line = strings.TrimRight(line, "\r\n")
			first = false
			continue
		}
		if line == "\r\n" || line == "\n" {
			break
		}
		head.WriteString(line)
		name, value, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		r.Fields = append(r.Fields, [2]string{name, strings.TrimSpace(value)})
	}
	r.Head = head.String()
	if te := r.values("Transfer-Encoding"); len(te) > 0 && strings.EqualFold(te[0], "chunked") {
		body, err := io.ReadAll(httputil.NewChunkedReader(br))
		if err != nil {
			return nil, err
		}
		// the trailer section and its blank line (trailer fields are recorded as "trailer:NAME")
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return nil, err
			}
			if line == "\r\n" || line == "\n" {
				break
			}
			name, value, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
			r.Fields = append(r.Fields, [2]string{"trailer:" + name, strings.TrimSpace(value)})
		}
		r.Body = body
	} else if cl := r.values("Content-Length"); len(cl) > 0 {
		n, err := strconv.Atoi(cl[0])
		if err != nil {
			return nil, err
		}
		r.Body = make([]byte, n)
		if _, err := io.ReadFull(br, r.Body); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// requests returns a copy of the requests read so far.
func (b *rawBackend) requests() []*rawReq {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*rawReq(nil), b.reqs...)
}

// lastReq waits for at least one request and returns the last one.
func (b *rawBackend) lastReq(t testing.TB) *rawReq {
	t.Helper()
	waitFor(t, func() bool { return b.nreq.Load() > 0 })
	rs := b.requests()
	return rs[len(rs)-1]
}

// rawClient is a client connection that writes bytes as given and reads answers with net/http's
// parser (or raw, to see every header line).
type rawClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// rawResp is an answer as read off the wire.
type rawResp struct {
	Status int
	Head   string      // status line and header lines as received
	Fields [][2]string // header fields in order
	Body   string
	Err    error // reading stopped on this error (nil: a complete answer)
}

func (r *rawResp) values(name string) []string {
	var out []string
	for _, f := range r.Fields {
		if strings.EqualFold(f[0], name) {
			out = append(out, f[1])
		}
	}
	return out
}

// read reads one answer within timeout: the head, then a body framed by Content-Length, chunked
// encoding, or the connection's end. A 1xx answer or a HEAD request's answer has no body: noBody.
func (rc *rawClient) read(timeout time.Duration, noBody bool) *rawResp {
	rc.c.SetReadDeadline(time.Now().Add(timeout))
	defer rc.c.SetReadDeadline(time.Time{})
	r := &rawResp{}
	var head strings.Builder
	for first := true; ; first = false {
		line, err := rc.br.ReadString('\n')
		if err != nil {
			r.Head, r.Err = head.String()+line, err
			return r
		}
		if line == "\r\n" || line == "\n" {
			break
		}
		head.WriteString(line)
		if first {
			if f := strings.Fields(line); len(f) >= 2 {
				r.Status, _ = strconv.Atoi(f[1])
			}
			continue
		}
		name, value, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		r.Fields = append(r.Fields, [2]string{name, strings.TrimSpace(value)})
	}
	r.Head = head.String()
	if noBody || r.Status < 200 || r.Status == 204 || r.Status == 304 {
		return r
	}
	var body []byte
	var err error
	switch {
	case len(r.values("Transfer-Encoding")) > 0:
		body, err = io.ReadAll(httputil.NewChunkedReader(rc.br))
		if err == nil {
			for { // trailer section
				line, lerr := rc.br.ReadString('\n')
				if lerr != nil {
					err = lerr
					break
				}
				if line == "\r\n" || line == "\n" {
					break
				}
				name, value, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
				r.Fields = append(r.Fields, [2]string{"trailer:" + name, strings.TrimSpace(value)})
			}
		}
	case len(r.values("Content-Length")) > 0:
		n, _ := strconv.ParseInt(r.values("Content-Length")[0], 10, 64)
		body, err = io.ReadAll(io.LimitReader(rc.br, n))
		if err == nil && int64(len(body)) < n {
			err = io.ErrUnexpectedEOF
		}
	default:
		body, err = io.ReadAll(rc.br)
	}
	r.Body, r.Err = string(body), err
	return r
}

// closedWithin reports whether the proxy closes the connection within d (reading and discarding).
func (rc *rawClient) closedWithin(d time.Duration) bool {
	rc.c.SetReadDeadline(time.Now().Add(d))
	defer rc.c.SetReadDeadline(time.Time{})
	_, err := io.Copy(io.Discard, rc.br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// exchange sends a request on a new connection and reads one answer.
func exchange(t testing.TB, addr, req string) *rawResp {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.send(req)
	return rc.read(5*time.Second, strings.HasPrefix(req, "HEAD "))
}
