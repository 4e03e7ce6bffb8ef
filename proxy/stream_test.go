package proxy

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"sioproxy/balancer"
)

// Other paths (issue 10, point 9): streams in bounded memory, not cut by the client write timeout.

func TestServerSentEventsOutliveTheWriteTimeout(t *testing.T) {
	const events = 8
	sse := make(chan struct{})
	stream := func(c io.Writer) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for i := 0; i < events; i++ {
			time.Sleep(100 * time.Millisecond)
			ev := fmt.Sprintf("data: %d\n\n", i)
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
		}
		io.WriteString(c, "0\r\n\r\n")
		close(sse)
	}
	rb := startRawBackend(t, func(r *rawReq) rawAnswer { return rawAnswer{Stream: stream} })
	p := startProxy(t, func(s *Settings) { s.WriteTimeout = 250 * time.Millisecond }, []balancer.Spec{rb.spec("raw")})
	rc := dialRaw(t, p.addr)
	rc.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	r := rc.read(10*time.Second, false)
	if r.Status != 200 || strings.Count(r.Body, "data: ") != events {
		t.Fatalf("event stream: %d, %d events, %v, want %d", r.Status, strings.Count(r.Body, "data: "), r.Err, events)
	}
	<-sse
}

func TestDownloadIsStreamed(t *testing.T) {
	// The backend sends the first half, then waits until the client has read some of it: a proxy
	// that reads the whole body before answering never passes that point.
	const size = 4 << 20
	firstSeen := make(chan struct{})
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		return rawAnswer{Stream: func(c io.Writer) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)
			c.Write(data[:size/2])
			select {
			case <-firstSeen:
			case <-time.After(10 * time.Second):
				return
			}
			c.Write(data[size/2:])
		}}
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	rc := dialRaw(t, p.addr)
	rc.send("GET /download HTTP/1.1\r\nHost: x\r\n\r\n")
	rc.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		line, err := rc.br.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer before the body was complete: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	got := make([]byte, size)
	if _, err := io.ReadFull(rc.br, got[:1024]); err != nil {
		t.Fatal(err)
	}
	close(firstSeen)
	if _, err := io.ReadFull(rc.br, got[1024:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("download corrupted")
	}
}

func TestHugeContentLengthDoesNotPanic(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if strings.Contains(r.Line, "huge") {
			return rawAnswer{Resp: "HTTP/1.1 200 OK\r\nContent-Length: 281474976710656\r\n\r\n0123456789", Close: true}
		}
		return eioRaw(r)
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	for _, target := range []string{"/huge", "/socket.io/huge.js", "/socket.io/?EIO=4&transport=polling&huge=1", "/socket.io/?EIO=4&transport=polling&huge=1&sid=" + sid} {
		rc := dialRaw(t, p.addr)
		rc.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")
		rc.read(5*time.Second, false) // a cut stream or an error; what matters is what follows
		if r := exchange(t, p.addr, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n"); r.Status != 200 || r.Body != "raw" {
			t.Fatalf("after a 2^48 Content-Length on %s: %d %q", target, r.Status, r.Body)
		}
	}
}

func TestChunkedTrailersAreMerged(t *testing.T) {
	rb := startRawBackend(t, func(r *rawReq) rawAnswer {
		if r.query().Get("sid") != "" {
			return rawAnswer{Resp: "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
				"6\r\n4hello\r\n0\r\nX-Sum: abc\r\n\r\n"}
		}
		return eioRaw(r)
	})
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	r := exchange(t, p.addr, "GET /socket.io/?EIO=4&transport=polling&sid="+sid+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if r.Status != 200 || r.Body != "4hello" {
		t.Fatalf("%d %q %v", r.Status, r.Body, r.Err)
	}
	if got := r.values("X-Sum"); len(got) != 1 || got[0] != "abc" {
		t.Fatalf("trailer X-Sum in the answer's head: %q\n%s", got, r.Head)
	}
}

func TestRequestTrailersAreForwarded(t *testing.T) {
	rb := startRawBackend(t, eioRaw)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	sid := string(mustHandshakeRaw(t, p.addr))
	// Streamed (another path): the body goes on chunked, the field as a trailer.
	r := exchange(t, p.addr, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
	q := rb.lastReq(t)
	if r.Status != 200 || string(q.Body) != "hello" || len(q.values("trailer:X-Sum")) != 1 || q.values("trailer:X-Sum")[0] != "42" {
		t.Fatalf("streamed: %d, backend got %q, fields %q", r.Status, q.Body, q.Fields)
	}
	// Read whole (a polling POST): the field joins the head.
	r = exchange(t, p.addr, "POST /socket.io/?EIO=4&transport=polling&sid="+sid+" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n40\r\n0\r\nX-Sum: 43\r\n\r\n")
	q = rb.lastReq(t)
	if r.Status != 200 || string(q.Body) != "40" || len(q.values("X-Sum")) != 1 || q.values("X-Sum")[0] != "43" {
		t.Fatalf("read whole: %d, backend got %q, fields %q", r.Status, q.Body, q.Fields)
	}
}
