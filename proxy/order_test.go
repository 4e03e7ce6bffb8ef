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

// orderBackend is an Engine.IO-shaped backend that scripts the race of a session's POST and GET:
// it holds each polling POST until the session's GET arrives (or release is called), then writes
// the POST's "ok" and right after it the GET's answer, the way engine.io answers a CONNECT POST
// and, in the next tick, the pending GET with the CONNECT ack.
type orderBackend struct {
	ln   net.Listener
	addr string

	mu       sync.Mutex
	next     int
	sessions map[string]*orderSession
	holdGET  bool // the GET does not release the POST: it is answered while the POST is held
}

type orderSession struct {
	postIn   chan struct{} // the POST arrived
	postConn net.Conn      // its connection (set before postIn closes)
	release  chan struct{} // the POST may be answered by its own goroutine (holdGET)
	answered chan struct{} // its answer was written (by the GET's goroutine, or its own)
	once     sync.Once
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
		s = &orderSession{postIn: make(chan struct{}), release: make(chan struct{}), answered: make(chan struct{})}
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
		var resp string
		switch {
		case sid == "":
			b.mu.Lock()
			b.next++
			sid = fmt.Sprintf("ordersid%012d", b.next)
			b.mu.Unlock()
			resp = httpOK(`0{"sid":"` + sid + `","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)
		case strings.HasPrefix(r.Line, "POST "):
			s := b.session(sid)
			s.postConn = c
			close(s.postIn)
			select {
			case <-s.answered: // the GET's goroutine answered it
			case <-s.release:
				if _, err := c.Write([]byte(httpOK("ok"))); err != nil {
					return
				}
				close(s.answered)
			}
			continue
		default:
			s := b.session(sid)
			b.mu.Lock()
			hold := b.holdGET
			b.mu.Unlock()
			if !hold {
				// Both answers back to back from one goroutine: they reach the proxy together.
				if _, err := s.postConn.Write([]byte(httpOK("ok"))); err != nil {
					return
				}
				close(s.answered)
			}
			resp = httpOK("40")
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

// TestPollAnswersKeepTheSessionsOrder: when the backend answers a session's POST and then its
// GET at once, the client gets the POST's answer first (the GET's waits for it), every time; the
// proxy's netpoller would otherwise often write the later answer first.
func TestPollAnswersKeepTheSessionsOrder(t *testing.T) {
	be := startOrderBackend(t)
	p := startProxy(t, nil, []balancer.Spec{{ID: "order", Addr: be.addr, Weight: 1, State: balancer.Active, Source: "static"}})
	const sessions = 100
	inverted := 0
	for i := 0; i < sessions; i++ {
		sid := orderSID(t, p)
		_, raw, _ := sticky.SplitTagged([]byte(sid))
		uri := "/socket.io/?EIO=4&transport=polling&sid=" + sid
		post, get := dialRaw(t, p.addr), dialRaw(t, p.addr)
		post.send("POST " + uri + " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40")
		s := be.session(string(rawOr(raw, sid)))
		select {
		case <-s.postIn:
		case <-time.After(10 * time.Second):
			t.Fatal("the POST did not reach the backend")
		}
		get.send("GET " + uri + " HTTP/1.1\r\nHost: x\r\n\r\n")
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

// TestPollAnswerWaitIsBounded: a POST that is not answered holds the session's GET answer for the
// bound only; once the POST is answered, nothing of it is left in the session's entry.
func TestPollAnswerWaitIsBounded(t *testing.T) {
	be := startOrderBackend(t)
	be.mu.Lock()
	be.holdGET = true
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
	if d := time.Since(start); d < postWait {
		t.Fatalf("the GET's answer came %v after it was sent, before the %v bound of the wait for the POST", d, postWait)
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
