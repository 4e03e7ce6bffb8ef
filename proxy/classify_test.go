package proxy

import (
	"strings"
	"testing"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// Classification equals what the backend sees (issue 10, point 8): a request the proxy would
// classify one way and engine.io (or a normalising server) another is refused; keys and sids are
// read percent-decoded, as engine.io reads them.

func TestAmbiguousPathsAreRefused(t *testing.T) {
	rb := startRawBackend(t, eioRaw)
	p := startProxy(t, nil, []balancer.Spec{rb.spec("raw")})
	for _, target := range []string{
		"/socket.io/../x?EIO=4&transport=polling",
		"/socket.io/%2e%2e/x?EIO=4&transport=polling",
		"/x/../socket.io/?EIO=4&transport=polling",
		"/%73ocket.io/?EIO=4&transport=polling",
		"//socket.io/?EIO=4&transport=polling",
		"/socket.io%2f?EIO=4&transport=polling",
		"/socket.io/?EIO=4&transport=polling&sid=a&sid=b",
		"/socket.io/?EIO=4&transport=polling&transport=websocket",
		"/socket.io/?EIO=4&EIO=3&transport=polling",
		"/socket.io/?EIO=4&transport=polling&%73id=a&sid=b",
	} {
		before := rb.nreq.Load()
		r := exchange(t, p.addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if r.Status != 400 {
			t.Errorf("%s: %d %q, want 400", target, r.Status, r.Body)
		}
		if rb.nreq.Load() != before {
			t.Errorf("%s reached the backend", target)
		}
	}
	if n := p.Table().Len(); n != 0 {
		t.Errorf("%d sessions created", n)
	}
	// What is unambiguous passes as sent.
	for _, target := range []string{"/app/../other", "/files/a%2Fb", "/socket.io/socket.io.js", "/socket.io/./x.js"} {
		if r := exchange(t, p.addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); r.Status != 200 {
			t.Errorf("%s: %d", target, r.Status)
		}
		if got := rb.lastReq(t).target(); got != target {
			t.Errorf("%s reached the backend as %s", target, got)
		}
	}
}

func TestPercentEncodedKeysAndSIDsRoute(t *testing.T) {
	a := startRawBackend(t, eioRawNamed("alpha"))
	b := startRawBackend(t, eioRawNamed("beta"))
	p := startProxy(t, nil, []balancer.Spec{a.spec("a"), b.spec("b")})
	for i := 0; i < 4; i++ {
		sid := string(mustHandshakeRaw(t, p.addr))
		tag, raw, ok := sticky.SplitTagged([]byte(sid))
		if !ok {
			t.Fatalf("sid %q not tagged", sid)
		}
		owner := "alpha"
		if p.bal.Snapshot().ByTag(tag).ID == "b" {
			owner = "beta"
		}
		encoded := strings.NewReplacer(".", "%2E", "-", "%2d", "_", "%5F").Replace(sid)
		for _, q := range []string{
			"EIO=4&transport=polling&%73id=" + sid,
			"EIO=4&transport=polling&sid=" + encoded,
			"%45IO=4&%74ransport=polling&s%69d=" + encoded,
		} {
			r := exchange(t, p.addr, "GET /socket.io/?"+q+" HTTP/1.1\r\nHost: x\r\n\r\n")
			if r.Status != 200 || r.Body != "4"+owner {
				t.Fatalf("poll ?%s: %d %q, want the owner %s", q, r.Status, r.Body, owner)
			}
		}
		for name, be := range map[string]*rawBackend{"alpha": a, "beta": b} {
			for _, rq := range be.requests() {
				if got := rq.query().Get("sid"); got != "" && !strings.HasPrefix(got, name+"-sid-") {
					t.Fatalf("backend %s saw sid %q (raw of this session %q)", name, got, raw)
				}
			}
		}
	}
	if p.Table().Len() != 4 {
		t.Fatalf("table has %d sessions, want 4 (an encoded sid is no handshake)", p.Table().Len())
	}
}
