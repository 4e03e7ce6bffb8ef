// Package secrets checks that sioproxy never writes a session's sid, its bearer credential, where
// an operator's tools collect it (issue 10, point 11): with debug logs on and a mirror running,
// sessions are made, used, mirrored, closed, forged and orphaned by a killed owner, and no log line
// nor the mirror report carries any of their sids, raw or tagged.
//
//	go test -count=1 -v ./test/secrets/
package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "secrets",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client"},
	})
}

// mirrorServer starts test/mirror/server.js (a primary answers the event "diff" with v1, a shadow
// with v2, so every mirrored diff is a sample of the report).
func mirrorServer(t *testing.T, name, role string) (*testkit.Proc, string) {
	t.Helper()
	port := testkit.FreePort(t)
	p := testkit.Start(t, testkit.Command{Name: name, Dir: filepath.Join(testkit.Root(), "test", "mirror"), Bin: testkit.Node(),
		Args: []string{"server.js", "--port", fmt.Sprint(port), "--name", name, "--role", role, "--version", "4"}})
	if _, _, err := p.WaitLine(0, testkit.BackendReadyTimeout, testkit.HasEvent("ready")); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, p.Tail(10))
	}
	return p, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// TestNoSIDInLogsOrReports (#11).
func TestNoSIDInLogsOrReports(t *testing.T) {
	p1, u1 := mirrorServer(t, "primary-1", "primary")
	p2, u2 := mirrorServer(t, "primary-2", "primary")
	_, shadow := mirrorServer(t, "shadow", "shadow")
	_ = p1
	addr, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	cfg := fmt.Sprintf(`listen: %q
admin:
  listen: %q
log:
  level: debug
backends:
  - id: primary-1
    url: %s
  - id: primary-2
    url: %s
mirror:
  enabled: true
  sample: 1
  backends:
    - id: shadow
      url: %s
`, addr, admin, u1, u2, shadow)
	path := filepath.Join(t.TempDir(), "sioproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	px := testkit.StartProxy(t, testkit.ProxySpec{Addr: addr, Admin: admin, Args: []string{"-config", path}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := testkit.NewEIOClient(px.URL())
	defer c.CloseIdle()

	// Sessions: connect, emit echo and diff with acks (mirrored and compared), some closed.
	const n = 12
	var sids []string
	for i := 0; i < n; i++ {
		sid, err := c.Handshake(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sids = append(sids, sid)
		if err := c.Connect(ctx, sid); err != nil {
			t.Fatal(err)
		}
		for j, ev := range []string{"echo", "diff"} {
			payload := fmt.Sprintf(`42%d["%s",{"c":"s%d","i":%d}]`, j+1, ev, i, j)
			if st, body, err := c.Post(ctx, sid, payload); err != nil || st != http.StatusOK {
				t.Fatalf("emit %s: %d %q %v", ev, st, body, err)
			}
			if _, err := waitAck(ctx, c, sid, j+1); err != nil {
				t.Fatalf("ack of %s: %v", ev, err)
			}
		}
	}
	for _, sid := range sids[:n/3] {
		if err := c.Close(ctx, sid); err != nil {
			t.Fatal(err)
		}
	}
	// Failures: the sid of a closed session, polled and upgraded; a forged sid with a real tag.
	for _, sid := range sids[:n/3] {
		c.Get(ctx, sid)
		upgrade(t, px.Addr, sid)
	}
	c.Get(ctx, sids[0][:5]+"forgedforgedforged00")
	// The owner killed: its sessions are polled, posted to and upgraded.
	if !testkit.WaitFor(20*time.Second, func() bool { return reportHasSamples(t, px) }) {
		t.Fatalf("the mirror report has no samples: the check below would prove nothing\n%s", get(t, px.AdminURL("/mirror/report")))
	}
	p2.Kill()
	for _, sid := range sids[n/3:] {
		c.Post(ctx, sid, `42["echo",{}]`)
		c.Get(ctx, sid)
		upgrade(t, px.Addr, sid)
	}
	report := get(t, px.AdminURL("/mirror/report"))

	// No raw sid (the tagged one contains it) anywhere.
	lines := px.Texts(0)
	if len(lines) < n {
		t.Fatalf("only %d log lines at debug level", len(lines))
	}
	raws := make([]string, len(sids))
	for i, sid := range sids {
		raws[i] = sid[strings.IndexByte(sid, '.')+1:]
	}
	byMsg := map[string]int{} // log message -> lines carrying a sid
	for _, l := range lines {
		for _, raw := range raws {
			if strings.Contains(l, raw) {
				var e struct {
					Msg string `json:"msg"`
				}
				if json.Unmarshal([]byte(l), &e) != nil || e.Msg == "" {
					e.Msg = cut(strings.ReplaceAll(l, raw, "<sid>")) // the line itself carries the sid
				}
				byMsg[e.Msg]++
				break
			}
		}
	}
	for msg, k := range byMsg {
		t.Errorf("%d log lines %q carry a sid", k, msg)
	}
	inReport := 0
	for _, raw := range raws {
		if strings.Contains(report, raw) {
			inReport++
		}
	}
	if inReport > 0 {
		t.Errorf("the mirror report carries %d of the %d sids", inReport, len(sids))
	}
	if err := px.Healthy(); err != nil {
		t.Error(err)
	}
}

// waitAck polls sid until the ack with id arrives.
func waitAck(ctx context.Context, c *testkit.EIOClient, sid string, id int) (string, error) {
	for {
		st, body, err := c.Get(ctx, sid)
		if err != nil || st != http.StatusOK {
			return body, fmt.Errorf("GET: %d %q %v", st, body, err)
		}
		if strings.Contains(body, fmt.Sprintf("43%d[", id)) {
			return body, nil
		}
	}
}

// upgrade sends a WebSocket upgrade for sid and reads the answer (whatever it is).
func upgrade(t *testing.T, addr, sid string) {
	t.Helper()
	conn, err := testkit.DialRaw(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.Send([]byte("GET /socket.io/?EIO=4&transport=websocket&sid="+sid+" HTTP/1.1\r\nHost: secrets.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"), 3*time.Second)
	_, _ = conn.ReadResponse(http.MethodGet, 5*time.Second)
}

func reportHasSamples(t *testing.T, px *testkit.Proxy) bool {
	var r struct {
		Samples []struct {
			Session string `json:"session"`
		} `json:"samples"`
	}
	return json.Unmarshal([]byte(get(t, px.AdminURL("/mirror/report"))), &r) == nil && len(r.Samples) > 0
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func cut(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
