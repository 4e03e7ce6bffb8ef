package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"sioproxy/sticky"
)

// errBareLF is the read error of a request head whose blank line is a bare LF ("\n\n"): fasthttp
// accepts a head only once it sees CRLFCRLF, so without this the request would wait for its
// header timeout. The error handler answers it with 400.
var errBareLF = errors.New("request head ends with a bare LF")

// Guard states.
const (
	guardHead = iota // reading a request head: scanned, under the head deadline
	guardBody        // the head ended with CRLFCRLF: the rest is body or the handler's
	guardOff         // hijacked: bytes are a tunnel's
)

// guardConn wraps an accepted client connection for the one part of a request fasthttp cannot be
// told about: its head. While a head is read it enforces the head deadline (proxy.header_timeout,
// read from the live settings, so a reload applies) and refuses a head whose blank line is a bare
// LF. The handler marks each request (handling); the response's first write then starts the next
// head. A guardConn is used by its connection's goroutine only (fasthttp serves a connection, its
// handler included, on one goroutine; a hijack turns the guard off first).
type guardConn struct {
	net.Conn
	headerTimeout func() time.Duration

	state    uint8
	armed    bool // a request is being handled: its response's first write starts a new head
	nonEmpty bool // the head has a non-empty line
	bad      bool // a bare-LF blank line was seen: every read fails from now on
	deadline bool // the head deadline must be (re)applied before the next read
	lineLen  int  // bytes of the current line so far
	tail     [3]byte
	ntail    int
	start    time.Time // when the head's first bytes arrived

	// The connection's deadlines as set (see SetReadDeadline).
	rdl, wdl  time.Time
	clearRead bool // a cleared read deadline not passed on yet
	answered  bool // an answer was written: the next head's first read yields first

	// watch is the client-abort watch of this connection (long-polls), made on first use by the
	// connection's goroutine; Close, which fasthttp's Shutdown may call from another, releases it.
	watch atomic.Pointer[watchedConn]
	// post is the session ordering of a polling POST whose answer is not written yet: its first
	// write (or the connection's close) ends the POST (sticky.Order).
	post atomic.Pointer[sticky.Order]
}

// guardTLSConn is a guardConn over a TLS connection; fasthttp recognises TLS by these methods.
type guardTLSConn struct{ *guardConn }

type tlsConn interface {
	Handshake() error
	ConnectionState() tls.ConnectionState
}

// Handshake implements fasthttp's view of a TLS connection.
func (g guardTLSConn) Handshake() error { return g.Conn.(tlsConn).Handshake() }

// ConnectionState implements fasthttp's view of a TLS connection.
func (g guardTLSConn) ConnectionState() tls.ConnectionState {
	return g.Conn.(tlsConn).ConnectionState()
}

// guardListener wraps every accepted connection in a guardConn.
type guardListener struct {
	net.Listener
	headerTimeout func() time.Duration
}

// Accept implements net.Listener. It yields first: the server has just handed the previous
// connection to a worker goroutine, which then runs (reads and forwards its request) before the
// next connection is accepted. Without it, back-to-back connections of one client (Engine.IO's
// POST, upgrade and GET) start in reverse order (the newest goroutine runs first), and the backend
// sees a session's GET before its POST.
func (l guardListener) Accept() (net.Conn, error) {
	runtime.Gosched()
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return wrapGuard(c, l.headerTimeout), nil
}

func wrapGuard(c net.Conn, headerTimeout func() time.Duration) net.Conn {
	g := &guardConn{Conn: c, headerTimeout: headerTimeout}
	// The first head (and a TLS handshake before it) must arrive within the head deadline too.
	if d := headerTimeout(); d > 0 {
		g.SetReadDeadline(time.Now().Add(d))
	}
	if _, ok := c.(tlsConn); ok {
		return guardTLSConn{g}
	}
	return g
}

// NetConn returns the wrapped connection.
func (g *guardConn) NetConn() net.Conn { return g.Conn }

// guardOf returns the guard of a client connection, nil when it has none (tests, other listeners).
func guardOf(c net.Conn) *guardConn {
	switch g := c.(type) {
	case *guardConn:
		return g
	case guardTLSConn:
		return g.guardConn
	}
	return nil
}

// handling marks that a request's head was read and its handler runs: the next head starts with the
// response's first write.
func (g *guardConn) handling() {
	if g.state != guardOff {
		g.armed = true
	}
}

// off stops the guard for good (the connection is hijacked for a tunnel) and ends its abort watch.
func (g *guardConn) off() {
	g.state, g.armed = guardOff, false
	if w := g.watch.Swap(nil); w != nil {
		w.release(false)
	}
	g.endPendingPost()
}

// Close implements net.Conn: the connection's abort watch ends with it, and so does a POST whose
// answer was never written.
func (g *guardConn) Close() error {
	if w := g.watch.Swap(nil); w != nil {
		w.release(true)
	}
	g.endPendingPost()
	return g.Conn.Close()
}

// endPostAfterWrite makes the next write on the connection (the answer of the request being
// handled) end the POST of o; it reports false when the connection writes no more answers (a
// tunnel), and the caller ends it.
func (g *guardConn) endPostAfterWrite(o *sticky.Order) bool {
	if g.state == guardOff {
		return false
	}
	if old := g.post.Swap(o); old != nil {
		old.EndPost() // not written yet, but on this connection it is ahead of o's answer
	}
	return true
}

// endPendingPost ends the POST whose answer the connection has not written yet, if any.
func (g *guardConn) endPendingPost() {
	if g.post.Load() != nil {
		if o := g.post.Swap(nil); o != nil {
			o.EndPost()
		}
	}
}

// Write implements net.Conn: a handled request's response starts the next head, and once written
// ends a pending POST (endPostAfterWrite).
func (g *guardConn) Write(p []byte) (int, error) {
	if g.armed {
		g.armed = false
		g.state, g.nonEmpty, g.lineLen, g.ntail = guardHead, false, 0, 0
		g.start, g.deadline, g.answered = time.Time{}, false, true
	}
	n, err := g.Conn.Write(p)
	g.endPendingPost()
	return n, err
}

// Read implements net.Conn.
func (g *guardConn) Read(p []byte) (int, error) {
	if g.bad {
		return 0, errBareLF
	}
	if g.clearRead {
		g.setRead(time.Time{})
	}
	if g.state != guardHead {
		return g.Conn.Read(p)
	}
	if g.deadline {
		// fasthttp clears the read deadline after a keep-alive connection's first byte; the rest of
		// the head is still bound by the head deadline.
		g.deadline = false
		if d := g.headerTimeout(); d > 0 {
			g.SetReadDeadline(g.start.Add(d))
		}
	}
	if g.answered {
		// The client sends its next request once it has read the answer just written: a yield lets
		// the goroutines that are ready run first, and the read after it finds that request more
		// often (no read that fails with EAGAIN, no park and netpoller wake).
		g.answered = false
		runtime.Gosched()
	}
	n, err := g.Conn.Read(p)
	if n > 0 {
		if g.start.IsZero() {
			g.start = time.Now()
			g.deadline = true
		}
		g.scan(p[:n])
	}
	return n, err
}

// Deadlines. fasthttp sets a client connection's deadlines four times per keep-alive request (the
// idle wait, none once the first byte came, the body's read timeout, the answer's write timeout),
// each a runtime timer update. The guard passes on what changes anything: a cleared read deadline
// waits for the next read (the body's deadline usually replaces it first), and a write deadline
// may fall up to clientSlack later than asked, so a connection answering again within it keeps its
// timer. The guard is used by its connection's goroutine only.

// clientSlack is how much later than asked a client connection's write deadline may fall.
const clientSlack = time.Second

// SetDeadline implements net.Conn.
func (g *guardConn) SetDeadline(t time.Time) error {
	g.clearRead = false
	g.rdl, g.wdl = t, t
	return g.Conn.SetDeadline(t)
}

// SetReadDeadline implements net.Conn; a zero t (no deadline) takes effect at the next read.
func (g *guardConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		g.clearRead = !g.rdl.IsZero()
		return nil
	}
	return g.setRead(t)
}

func (g *guardConn) setRead(t time.Time) error {
	g.clearRead = false
	if t.Equal(g.rdl) {
		return nil
	}
	g.rdl = t
	return g.Conn.SetReadDeadline(t)
}

// SetWriteDeadline implements net.Conn: the deadline falls within [t, t+clientSlack].
func (g *guardConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		if g.wdl.IsZero() {
			return nil
		}
	} else if !g.wdl.IsZero() && !g.wdl.Before(t) && !g.wdl.After(t.Add(clientSlack)) {
		return nil
	} else {
		t = t.Add(clientSlack)
	}
	g.wdl = t
	return g.Conn.SetWriteDeadline(t)
}

// scan follows the head through b: at its end (the first empty line after a non-empty one) the
// guard stops if the head ends with CRLFCRLF, and marks it bad otherwise.
func (g *guardConn) scan(b []byte) {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			g.lineLen += len(b) - i
			break
		}
		lf := i + j
		line := g.lineLen + j // bytes of the line before its LF
		empty := line == 0 || (line == 1 && g.at(b, lf-1) == '\r')
		switch {
		case !empty:
			g.nonEmpty = true
		case !g.nonEmpty:
			// an empty line before the request line: fasthttp skips it
		case line == 1 && g.at(b, lf-2) == '\n' && g.at(b, lf-3) == '\r':
			g.state = guardBody // CRLF CRLF
			return
		default:
			g.bad = true
			return
		}
		g.lineLen = 0
		i = lf + 1
	}
	g.push(b)
}

// push keeps the last three bytes read (for a line end split across reads).
func (g *guardConn) push(b []byte) {
	for _, c := range b[max(0, len(b)-3):] {
		if g.ntail < 3 {
			g.tail[g.ntail] = c
			g.ntail++
			continue
		}
		g.tail[0], g.tail[1], g.tail[2] = g.tail[1], g.tail[2], c
	}
}

// at returns b[k], or for k < 0 the byte that many positions before b, from the bytes of earlier
// reads (0 if there were none).
func (g *guardConn) at(b []byte, k int) byte {
	if k >= 0 {
		return b[k]
	}
	if i := g.ntail + k; i >= 0 {
		return g.tail[i]
	}
	return 0
}

// netConnOf unwraps connection wrappers (the guard, a listener's) down to the connection that
// carries the request bytes: a TLS connection is kept unless throughTLS, which goes down to the
// socket (to watch it, never to read or write it).
func netConnOf(c net.Conn, throughTLS bool) net.Conn {
	for i := 0; i < 8 && c != nil; i++ {
		switch w := c.(type) {
		case *net.TCPConn:
			return w
		case tlsConn:
			if !throughTLS {
				return c
			}
			u, ok := c.(interface{ NetConn() net.Conn })
			if !ok {
				return c
			}
			c = u.NetConn()
		case interface{ NetConn() net.Conn }:
			c = w.NetConn()
		default:
			return c
		}
	}
	return c
}

// plainTCPOf returns the TCP socket that carries c's bytes as they are (no TLS over it), or nil.
func plainTCPOf(c net.Conn) *net.TCPConn {
	t, _ := netConnOf(c, false).(*net.TCPConn)
	return t
}

// socketOf returns the TCP socket under c, TLS or not, or nil.
func socketOf(c net.Conn) *net.TCPConn {
	t, _ := netConnOf(c, true).(*net.TCPConn)
	return t
}
