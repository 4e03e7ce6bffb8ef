package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// No raw sid in any log line (issue 10, point 11): a sid is its session's bearer credential.

func TestNoSIDInLogs(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	b1, b2 := startBackend(t, "r1"), startBackend(t, "r2")
	bal := balancer.New(balancer.NewRoundRobin(), balancer.WithTagger(sticky.TagFor))
	bal.Update(specsOf(b1, b2))
	s := testSettings()
	s.DialTimeout = time.Second
	p := New(zap.New(core), bal, s)
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	addr := ln.Addr().String()

	var sids []string
	for i := 0; i < 4; i++ {
		sids = append(sids, handshake(t, addr))
	}
	get(t, pollURL(addr, sids[0]))
	post(t, pollURL(addr, sids[0]), "1") // session end
	get(t, pollURL(addr, sids[0]))       // unknown now
	c, _, err := websocket.DefaultDialer.Dial(wsURL(addr, "&sid="+sids[1]), nil)
	if err == nil {
		c.Close()
	}
	websocket.DefaultDialer.Dial(wsURL(addr, "&sid="+sids[0]), nil) // upgrade of an unknown sid
	for _, be := range []*testBackend{b1, b2} {
		p.CloseSessions(be.url(), 10) // drain: closes sessions at the backend
	}
	sids = append(sids, handshake(t, addr), handshake(t, addr))
	b1.stop()
	b2.stop()
	for _, sid := range sids[4:] {
		get(t, pollURL(addr, sid)) // owner unreachable (Warn)
		websocket.DefaultDialer.Dial(wsURL(addr, "&sid="+sid), nil)
	}
	waitFor(t, func() bool { return logs.Len() > 0 })

	var needles []string
	for _, sid := range sids {
		_, raw, _ := sticky.SplitTagged([]byte(sid))
		needles = append(needles, sid, string(raw))
	}
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, n := range needles {
			if strings.Contains(line, n) {
				t.Errorf("log line carries a sid %q: %s", n, line)
			}
		}
	}
	if n := logs.FilterField(zap.String("sid_hash", SIDHash(string(mustRaw(sids[0]))))).Len(); n == 0 {
		t.Errorf("no line names the first session by its hash")
	}
}

func mustRaw(sid string) []byte {
	_, raw, ok := sticky.SplitTagged([]byte(sid))
	if !ok {
		return []byte(sid)
	}
	return raw
}
