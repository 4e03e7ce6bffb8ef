package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// orderBackend is an Engine.IO-shaped backend that scripts the race of a session's POST and
// pending GET: when the POST arrives while the GET waits, it writes the GET's answer ("40") and
// right after it the POST's "ok", both at once from one goroutine, the way engine.io answers a
// pending GET with what a POST's packets produced before it answers the POST. With holdPOST, a
// POST is answered only on release, and a GET at once.
type orderBackend struct {
	ln   net.Listener
	addr string

	mu       sync.Mutex
	next     int
	sessions map[string]*orderSession
	holdPOST bool
}

type orderSession struct {
	getIn   chan struct{} // the GET arrived (its connection in getConn)
	getConn net.Conn
	postIn  chan struct{} // the POST arrived
	release chan struct{} // holdPOST: the POST may be answered
	once    sync.Once
}

func startOrderBackend(t *testing.T) *orderBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &orderBackend{ln: ln, addr: ln.Addr().String(), sessions: map[string]*orderSession{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

func (b *orderBackend) session(sid string) *orderSession {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sessions[sid]
	if s == nil {
		s = &orderSession{getIn: make(chan struct{}), postIn: make(chan struct{}), release: make(chan struct{})}
		b.sessions[sid] = s
	}
	return s
}

func (s *orderSession) releasePost() { s.once.Do(func() { close(s.release) }) }

func httpOK(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

func (b *orderBackend) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		r, err := readRawRequest(br)
		if err != nil {
			return
		}
		sid := r.query().Get("sid")
		b.mu.Lock()
		hold := b.holdPOST
		b.mu.Unlock()
		var resp string
		switch {
		case sid == "":
			b.mu.Lock()
			b.next++
			sid = fmt.Sprintf("ordersid%012d", b.next)
			b.mu.Unlock()
			resp = httpOK(`0{"sid":"` + sid + `","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)
		case strings.HasPrefix(r.Line, "POST ") && hold:
			s := b.session(sid)
			close(s.postIn)
			<-s.release
			resp = httpOK("ok")
		case strings.HasPrefix(r.Line, "POST "):
			s := b.session(sid)
			close(s.postIn)
			<-s.getIn
			// Both answers back to back from one goroutine: they reach the proxy together.
			if _, err := s.getConn.Write([]byte(httpOK("40"))); err != nil {
				return
			}
			resp = httpOK("ok")
		case hold:
			resp = httpOK("40")
		default:
			s := b.session(sid)
			s.getConn = c
			close(s.getIn)
			<-s.postIn
			continue // the POST's goroutine answers
		}
		if _, err := c.Write([]byte(resp)); err != nil {
			return
		}
	}
}

// buffered reports whether bytes wait unread on c (a non-blocking peek at the socket).
func buffered(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var perr error
	if err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if perr != nil && !errors.Is(perr, syscall.EAGAIN) {
		t.Fatal(perr)
	}
	return n > 0
}

// orderSID does a handshake through p and returns the sid the client sees.
func orderSID(t *testing.T, p *testProxy) string {
	t.Helper()
	hs, err := sticky.ParseHandshake([]byte(exchange(t, p.addr, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n").Body))
	if err != nil {
		t.Fatal(err)
	}
	return string(hs.SID)
}

// TestPollAnswersKeepTheSessionsOrder: when the backend answers a session's pending GET and then
// its POST at once, the client gets the POST's answer first (the GET's waits for it), every time.
func TestPollAnswersKeepTheSessionsOrder(t *testing.T) {
	be := startOrderBackend(t)
	// A long bound: the test checks the order, not how long a loaded machine takes.
	p := startProxyOpts(t, nil, []balancer.Spec{{ID: "order", Addr: be.addr, Weight: 1, State: balancer.Active, Source: "static"}},
		withPostWait(time.Minute))
	const sessions = 100
	inverted := 0
	for i := 0; i < sessions; i++ {
		sid := orderSID(t, p)
		_, raw, _ := sticky.SplitTagged([]byte(sid))
		uri := "/socket.io/?EIO=4&transport=polling&sid=" + sid
		post, get := dialRaw(t, p.addr), dialRaw(t, p.addr)
		s := be.session(string(rawOr(raw, sid)))
		get.send("GET " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
		select {
		case <-s.getIn:
		case <-time.After(10 * time.Second):
			t.Fatal("the GET did not reach the backend")
		}
		post.send("POST " + uri + " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n42")
		if r := get.read(10*time.Second, false); r.Err != nil || r.Body != "40" {
			t.Fatalf("session %d: GET answer %q %v", i, r.Body, r.Err)
		}
		// The POST's answer was written before the GET's: it is in our receive queue already.
		if !buffered(t, post.c) {
			inverted++
		}
		if r := post.read(10*time.Second, false); r.Err != nil || r.Body != "ok" {
			t.Fatalf("session %d: POST answer %q %v", i, r.Body, r.Err)
		}
		post.c.Close()
		get.c.Close()
	}
	if inverted > 0 {
		t.Fatalf("%d of %d sessions got their GET's answer before their POST's", inverted, sessions)
	}
}

// TestPollAnswerWaitIsBounded: a POST that is not answered holds the session's GET (before it is
// sent, and before its answer is written) for the bound only; once the POST is answered, nothing
// of it is left in the session's entry.
func TestPollAnswerWaitIsBounded(t *testing.T) {
	be := startOrderBackend(t)
	be.mu.Lock()
	be.holdPOST = true
	be.mu.Unlock()
	p := startProxy(t, nil, []balancer.Spec{{ID: "order", Addr: be.addr, Weight: 1, State: balancer.Active, Source: "static"}})
	sid := orderSID(t, p)
	_, raw, _ := sticky.SplitTagged([]byte(sid))
	rawSID := rawOr(raw, sid)
	uri := "/socket.io/?EIO=4&transport=polling&sid=" + sid
	post, get := dialRaw(t, p.addr), dialRaw(t, p.addr)
	post.send("POST " + uri + " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40")
	s := be.session(string(rawSID))
	<-s.postIn
	_, order, ok := p.table.Lookup(rawSID)
	if !ok || order.PostsInFlight() != 1 {
		t.Fatalf("the session's entry does not count its POST in flight (%v, %d)", ok, order.PostsInFlight())
	}
	start := time.Now()
	get.send("GET " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := get.read(10*time.Second, false); r.Err != nil || r.Body != "40" {
		t.Fatalf("GET answer %q %v while the POST is held", r.Body, r.Err)
	}
	if d := time.Since(start); d < defaultPostWait {
		t.Fatalf("the GET's answer came %v after it was sent, before the %v bound of the wait for the POST", d, defaultPostWait)
	}
	s.releasePost()
	if r := post.read(10*time.Second, false); r.Err != nil || r.Body != "ok" {
		t.Fatalf("POST answer %q %v", r.Body, r.Err)
	}
	waitFor(t, func() bool { return order.PostsInFlight() == 0 })
}

func rawOr(raw []byte, sid string) []byte {
	if raw != nil {
		return raw
	}
	return []byte(sid)
}

// TestPollGETWaitsForThePOSTToBeSent: a session's GET that reaches the proxy while the session's
// POST is not sent yet (here: it waits for a backend connection) goes to the backend after the POST,
// not before.
func TestPollGETWaitsForThePOSTToBeSent(t *testing.T) {
	const sid = "sentsid00000000000001"
	release := make(chan struct{})
	be := startRawBackend(t, func(r *rawReq) rawAnswer {
		switch {
		case r.target() == "/hold":
			<-release
			return okAnswer("held")
		case r.query().Get("sid") == "":
			return okAnswer(`0{"sid":"` + sid + `","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`)
		case strings.HasPrefix(r.Line, "POST "):
			return okAnswer("ok")
		}
		return okAnswer("6")
	})
	// One backend connection: while /hold has it, the POST waits for it.
	p := startProxyOpts(t, func(s *Settings) { s.MaxConnsPerBackend = 1 }, []balancer.Spec{be.spec("sent")},
		withPostWait(time.Minute), withConnWaitTimeout(time.Minute))
	clientSID := orderSID(t, p)
	_, order, ok := p.table.Lookup([]byte(sid))
	if !ok {
		t.Fatal("the handshake made no session entry")
	}
	hold := dialRaw(t, p.addr)
	hold.send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, func() bool { return be.nreq.Load() == 2 }) // the handshake and /hold
	uri := "/socket.io/?EIO=4&transport=polling&sid=" + clientSID
	post, get := dialRaw(t, p.addr), dialRaw(t, p.addr)
	post.send("POST " + uri + " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40")
	waitFor(t, func() bool { return order.PostsInFlight() == 1 })
	get.send("GET " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, order.Waiting)
	close(release)
	for _, c := range []struct {
		rc   *rawClient
		body string
	}{{hold, "held"}, {post, "ok"}, {get, "6"}} {
		if r := c.rc.read(10*time.Second, false); r.Err != nil || r.Body != c.body {
			t.Fatalf("answer %q %v, want %q", r.Body, r.Err, c.body)
		}
	}
	var seen []string
	for _, r := range be.requests() {
		if strings.Contains(r.Line, "sid=") {
			seen = append(seen, strings.Fields(r.Line)[0])
		}
	}
	if strings.Join(seen, ",") != "POST,GET" {
		t.Fatalf("the backend got the session's requests in the order %v, want POST,GET", seen)
	}
	waitFor(t, func() bool { return order.PostsInFlight() == 0 && !order.Waiting() })
}
