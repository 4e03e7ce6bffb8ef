package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sioproxy/demo"
	"sioproxy/sticky"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runningProxy is sioproxy's serve() running in-process on a config file.
type runningProxy struct {
	addr, admin, file string
	backends          []string
}

func startApp(t *testing.T, backends []string, extra string) *runningProxy {
	t.Helper()
	rp := &runningProxy{addr: freeAddr(t), admin: freeAddr(t), file: filepath.Join(t.TempDir(), "sioproxy.yaml"), backends: backends}
	rp.write(t, backends, extra)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	o, err := parseFlags("t", []string{"-config", rp.file}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- serve(ctx, cfg, o, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not return after cancel")
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.Dial("tcp", rp.admin); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("proxy did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rp
}

func (rp *runningProxy) write(t *testing.T, backends []string, extra string) {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nadmin:\n  listen: %s\nlog:\n  level: error\nbalancer:\n  policy: round_robin\n  slow_start: 0s\nbackends:\n", rp.addr, rp.admin)
	for i, u := range backends {
		fmt.Fprintf(&b, "  - id: b%d\n    url: %s\n", i+1, u)
	}
	b.WriteString(extra)
	if err := os.WriteFile(rp.file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// session opens an Engine.IO v4 polling session with a Socket.IO connect; it returns the sid the
// client sees and the backend id that owns it.
func (rp *runningProxy) session(t *testing.T) (sid, owner string) {
	t.Helper()
	code, body := httpDo(t, "GET", "http://"+rp.addr+"/socket.io/?EIO=4&transport=polling", "")
	if code != 200 {
		t.Fatalf("handshake: %d %s", code, body)
	}
	hs, err := sticky.ParseHandshake([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	rp.exchange(t, string(hs.SID))
	return string(hs.SID), rp.owner(t, hs.SID)
}

// exchange does one POST (Socket.IO connect) and one GET on a session; both must succeed.
func (rp *runningProxy) exchange(t *testing.T, sid string) {
	t.Helper()
	u := "http://" + rp.addr + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, body := httpDo(t, "POST", u, "40"); code != 200 {
		t.Fatalf("POST on %s: %d %s", sid, code, body)
	}
	if code, body := httpDo(t, "GET", u, ""); code != 200 {
		t.Fatalf("GET on %s: %d %s", sid, code, body)
	}
}

func (rp *runningProxy) owner(t *testing.T, sid []byte) string {
	tag, _, ok := sticky.SplitTagged(sid)
	if !ok {
		t.Fatalf("sid %q untagged", sid)
	}
	for _, b := range rp.backendViews(t) {
		if b.Tag == string(tag) {
			return b.ID
		}
	}
	t.Fatalf("no backend with tag %s", tag)
	return ""
}

type view struct {
	ID, State, Tag string
	Sessions       int64
}

func (rp *runningProxy) backendViews(t *testing.T) []view {
	code, body := httpDo(t, "GET", "http://"+rp.admin+"/backends", "")
	var vs []view
	if err := json.Unmarshal([]byte(body), &vs); code != 200 || err != nil {
		t.Fatalf("/backends: %d %v %s", code, err, body)
	}
	return vs
}

func TestDrainReloadAndMetricsEndToEnd(t *testing.T) {
	urls, stop, err := demo.Start(context.Background(), 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	rp := startApp(t, urls, "")

	count := map[string]int{}
	sids := map[string]string{}
	for i := 0; i < 6; i++ {
		sid, owner := rp.session(t)
		count[owner]++
		sids[owner] = sid
	}
	if count["b1"] != 2 || count["b2"] != 2 || count["b3"] != 2 {
		t.Fatalf("round robin spread: %v", count)
	}
	_, metrics := httpDo(t, "GET", "http://"+rp.admin+"/metrics", "")
	for _, want := range []string{`sioproxy_handshakes_total{backend="b1"} 2`, `sioproxy_backend_sessions{backend="b2"} 2`, `sioproxy_requests_total{code="2xx",kind="handshake"} 6`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Drain b1: no new session goes there; its sessions keep working.
	if code, body := httpDo(t, "POST", "http://"+rp.admin+"/backends/b1/drain", ""); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	for i := 0; i < 6; i++ {
		if _, owner := rp.session(t); owner == "b1" {
			t.Fatal("a new session went to the drained backend")
		}
	}
	rp.exchange(t, sids["b1"])
	if code, _ := httpDo(t, "POST", "http://"+rp.admin+"/backends/b1/undrain", ""); code != 200 {
		t.Fatal("undrain failed")
	}
	got := map[string]bool{}
	for i := 0; i < 6; i++ {
		_, owner := rp.session(t)
		got[owner] = true
	}
	if !got["b1"] {
		t.Fatal("undrained backend gets no new sessions")
	}

	// A bad reload is refused with file:line and changes nothing.
	os.WriteFile(rp.file, []byte("listen: "+rp.addr+"\nbackends: [\n"), 0o644)
	code, body := httpDo(t, "POST", "http://"+rp.admin+"/reload", "")
	if code != 400 || !strings.Contains(body, filepath.Base(rp.file)+":") {
		t.Fatalf("bad reload: %d %s", code, body)
	}
	if vs := rp.backendViews(t); len(vs) != 3 {
		t.Fatalf("bad reload changed the backends: %v", vs)
	}
	rp.exchange(t, sids["b2"])

	// A good reload removes b3: it gets no new sessions, its live sessions keep working (grace).
	rp.write(t, urls[:2], "")
	if code, body := httpDo(t, "POST", "http://"+rp.admin+"/reload", ""); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	for _, v := range rp.backendViews(t) {
		if v.ID == "b3" && v.State != "draining" {
			t.Fatalf("removed backend is %s", v.State)
		}
	}
	for i := 0; i < 6; i++ {
		if _, owner := rp.session(t); owner == "b3" {
			t.Fatal("a new session went to a removed backend")
		}
	}
	rp.exchange(t, sids["b3"])
	_, metrics = httpDo(t, "GET", "http://"+rp.admin+"/metrics", "")
	if !strings.Contains(metrics, `sioproxy_reloads_total{result="error"} 1`) || !strings.Contains(metrics, `sioproxy_reloads_total{result="ok"} 1`) {
		t.Errorf("reload metrics wrong")
	}
}

func TestDrainDeadlineClosesSessions(t *testing.T) {
	urls, stop, err := demo.Start(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	rp := startApp(t, urls, "")
	var onB1 []string
	for len(onB1) < 4 {
		sid, owner := rp.session(t)
		if owner == "b1" {
			onB1 = append(onB1, sid)
		}
	}
	start := time.Now()
	if code, body := httpDo(t, "POST", "http://"+rp.admin+"/backends/b1/drain?deadline=200ms&rate=20", ""); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		closed := 0
		for _, sid := range onB1 {
			code, _ := httpDo(t, "POST", "http://"+rp.addr+"/socket.io/?EIO=4&transport=polling&sid="+sid, "3")
			if code == 400 {
				closed++
			}
		}
		if closed == len(onB1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions closed 5s after a 200ms drain deadline", closed, len(onB1))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("sessions closed before the deadline (%v)", el)
	}
}
