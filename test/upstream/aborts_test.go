package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// TestAbortedPollsReachTheBackend (#6): 100 clients abort their pending polling GET (the TCP
// connection closes). As behind nginx, the backend's request must end within about a second, so
// that engine.io closes each transport (seen within 2 s) instead of flushing packets into a dead
// socket. Half the clients then come back on a new connection and emit with an ack: either their
// session is announced gone (400), or the ack reaches them; an accepted emit whose ack never comes is
// a lost packet.
func TestAbortedPollsReachTheBackend(t *testing.T) {
	const n, back = 100, 50
	bs := testkit.StartBackends(t, 1, "ab%d", "4")
	be := bs[0]
	px := startProxy(t, entries(bs), "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()
	sids := make([]string, n)
	for i := range sids {
		sid, err := c.Handshake(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Connect(ctx, sid); err != nil {
			t.Fatal(err)
		}
		sids[i] = sid
	}
	// Every session's GET is pending at the backend, on a connection of its own.
	conns := make([]*testkit.RawConn, n)
	for i, sid := range sids {
		conn, err := testkit.DialRaw(px.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = conn
		defer conn.Close()
		req := fmt.Sprintf("GET /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: abort.test\r\n\r\n", sid)
		if err := conn.Send([]byte(req), 3*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if !testkit.WaitFor(10*time.Second, func() bool { return px.Backends(t)[be.Name].InFlight == n }) {
		t.Fatalf("not every poll is pending at the backend: %+v", px.Backends(t)[be.Name])
	}
	mark := be.Len()
	aborted := time.Now()
	for _, conn := range conns {
		conn.Close()
	}

	// The backend sees each transport close within 2 s of the abort.
	raw := map[string]string{} // raw sid -> client sid
	for _, sid := range sids {
		raw[sid[strings.IndexByte(sid, '.')+1:]] = sid
	}
	closedAt := map[string]time.Time{}
	testkit.WaitFor(2500*time.Millisecond, func() bool {
		for _, l := range be.Lines()[mark:] {
			var e testkit.BackendEvent
			if json.Unmarshal([]byte(l.Text), &e) == nil && e.Event == "disconnect" && raw[e.SID] != "" {
				if _, seen := closedAt[e.SID]; !seen {
					closedAt[e.SID] = l.At
				}
			}
		}
		return len(closedAt) == n
	})
	late := 0
	for _, at := range closedAt {
		if at.Sub(aborted) > 2*time.Second {
			late++
		}
	}
	if len(closedAt) < n || late > 0 {
		t.Errorf("the backend closed %d of %d aborted transports within 2.5 s (%d of them later than 2 s); want every one within 2 s",
			len(closedAt)-late, n, late)
	}

	// Clients that come back lose no packet.
	var mu sync.Mutex
	var lost, gone, delivered int
	var examples []string
	var wg sync.WaitGroup
	for i := 0; i < back; i++ {
		wg.Go(func() {
			outcome, detail := comeBack(ctx, px.URL(), sids[i], i)
			mu.Lock()
			defer mu.Unlock()
			switch outcome {
			case "gone":
				gone++ // announced: the client reconnects, nothing is silently lost
			case "delivered":
				delivered++
			default:
				lost++
				if len(examples) < 3 {
					examples = append(examples, detail)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("clients that came back: %d sessions announced gone, %d acks delivered, %d lost", gone, delivered, lost)
	if lost > 0 {
		t.Errorf("%d of %d clients that came back lost a packet (their emit was accepted and its ack never came): %q", lost, back, examples)
	}
	assertAlive(t, px)
}

// comeBack emits echo i with an ack on sid from a new connection and says what became of it:
// "gone" (400: the session is announced closed), "delivered" (the ack arrived) or "lost".
func comeBack(ctx context.Context, base, sid string, i int) (outcome, detail string) {
	c := testkit.NewEIOClient(base)
	defer c.CloseIdle()
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	st, body, err := c.Post(ctx, sid, fmt.Sprintf(`421["echo",{"i":%d}]`, i))
	switch {
	case err != nil:
		return "lost", fmt.Sprintf("POST: %v", err)
	case st == http.StatusBadRequest:
		return "gone", ""
	case st != http.StatusOK:
		return "lost", fmt.Sprintf("POST: %d %q", st, body)
	}
	if gst, gbody, gerr := getAck(ctx, c, sid, i); gerr != nil || gst != http.StatusOK {
		return "lost", fmt.Sprintf("emit accepted, then GET: %d %q %v", gst, gbody, gerr)
	}
	return "delivered", ""
}

// getAck polls sid until the ack of echo i arrives (other packets, such as a ping, are skipped).
func getAck(ctx context.Context, c *testkit.EIOClient, sid string, i int) (int, string, error) {
	want := fmt.Sprintf(`"data":{"i":%d}`, i)
	for {
		st, body, err := c.Get(ctx, sid)
		if err != nil || st != http.StatusOK {
			return st, body, err
		}
		if strings.Contains(body, "431[") && strings.Contains(body, want) {
			return st, body, nil
		}
		if ctx.Err() != nil {
			return st, body, ctx.Err()
		}
	}
}
