package daemon

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

	"go.uber.org/zap"

	"sioproxy/configs"
	"sioproxy/demo"
	"sioproxy/sticky"
)

// running is a Daemon run in-process on a config file, in front of demo backends.
type running struct {
	d           *Daemon
	addr, admin string
	file        string
	cancel      context.CancelFunc
	done        chan error
}

// startDaemon writes a config (listen and admin on free ports, the backends, extra YAML), and runs
// a daemon on it.
func startDaemon(t *testing.T, backends []string, extra string) *running {
	t.Helper()
	r := &running{file: filepath.Join(t.TempDir(), "sioproxy.yaml"), done: make(chan error, 1)}
	r.write(t, backends, extra)
	cfg, err := configs.Load(r.file)
	if err != nil {
		t.Fatal(err)
	}
	_, level, err := NewLogger(configs.Log{Level: "error", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Load: func() (*configs.Config, error) { return configs.Load(r.file) }, Logger: zap.NewNop(), Level: level})
	if err != nil {
		t.Fatal(err)
	}
	r.d = d
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- d.Run(ctx) }()
	select {
	case <-d.Listening():
	case err := <-r.done:
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start")
	}
	r.addr, r.admin = d.Addr().String(), d.AdminAddr().String()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func (r *running) write(t *testing.T, backends []string, extra string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\nlog:\n  level: error\nbalancer:\n  policy: round_robin\n  slow_start: 0s\n")
	if len(backends) > 0 {
		b.WriteString("backends:\n")
	}
	for i, u := range backends {
		fmt.Fprintf(&b, "  - id: b%d\n    url: %s\n", i+1, u)
	}
	b.WriteString(extra)
	if err := os.WriteFile(r.file, []byte(b.String()), 0o644); err != nil {
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
func (r *running) session(t *testing.T) (sid, owner string) {
	t.Helper()
	code, body := httpDo(t, "GET", "http://"+r.addr+"/socket.io/?EIO=4&transport=polling", "")
	if code != 200 {
		t.Fatalf("handshake: %d %s", code, body)
	}
	hs, err := sticky.ParseHandshake([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r.exchange(t, string(hs.SID))
	return string(hs.SID), r.owner(t, hs.SID)
}

// exchange does one POST (Socket.IO connect) and one GET on a session; both must succeed.
func (r *running) exchange(t *testing.T, sid string) {
	t.Helper()
	u := "http://" + r.addr + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, body := httpDo(t, "POST", u, "40"); code != 200 {
		t.Fatalf("POST on a session: %d %s", code, body)
	}
	if code, body := httpDo(t, "GET", u, ""); code != 200 {
		t.Fatalf("GET on a session: %d %s", code, body)
	}
}

func (r *running) owner(t *testing.T, sid []byte) string {
	t.Helper()
	tag, _, ok := sticky.SplitTagged(sid)
	if !ok {
		t.Fatalf("sid untagged")
	}
	for _, b := range r.backends(t) {
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

func (r *running) backends(t *testing.T) []view {
	t.Helper()
	code, body := httpDo(t, "GET", "http://"+r.admin+"/backends", "")
	var vs []view
	if err := json.Unmarshal([]byte(body), &vs); code != 200 || err != nil {
		t.Fatalf("/backends: %d %v %s", code, err, body)
	}
	return vs
}

func (r *running) metrics(t *testing.T) string {
	t.Helper()
	_, m := httpDo(t, "GET", "http://"+r.admin+"/metrics", "")
	return m
}

func demoBackends(t *testing.T, n int) []string {
	t.Helper()
	urls, stop, err := demo.Start(context.Background(), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return urls
}

func TestDrainReloadAndMetrics(t *testing.T) {
	urls := demoBackends(t, 3)
	r := startDaemon(t, urls, "")

	count := map[string]int{}
	sids := map[string]string{}
	for i := 0; i < 6; i++ {
		sid, owner := r.session(t)
		count[owner]++
		sids[owner] = sid
	}
	if count["b1"] != 2 || count["b2"] != 2 || count["b3"] != 2 {
		t.Fatalf("round robin spread: %v", count)
	}
	metrics := r.metrics(t)
	for _, want := range []string{`sioproxy_handshakes_total{backend="b1"} 2`, `sioproxy_backend_sessions{backend="b2"} 2`, `sioproxy_requests_total{code="2xx",kind="handshake"} 6`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Drain b1: no new session goes there; its sessions keep working.
	if code, body := httpDo(t, "POST", "http://"+r.admin+"/backends/b1/drain", ""); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	for i := 0; i < 6; i++ {
		if _, owner := r.session(t); owner == "b1" {
			t.Fatal("a new session went to the drained backend")
		}
	}
	r.exchange(t, sids["b1"])
	if code, _ := httpDo(t, "POST", "http://"+r.admin+"/backends/b1/undrain", ""); code != 200 {
		t.Fatal("undrain failed")
	}
	got := map[string]bool{}
	for i := 0; i < 6; i++ {
		_, owner := r.session(t)
		got[owner] = true
	}
	if !got["b1"] {
		t.Fatal("undrained backend gets no new sessions")
	}

	// A bad file is refused with file:line and changes nothing.
	os.WriteFile(r.file, []byte("listen: 127.0.0.1:0\nbackends: [\n"), 0o644)
	code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", "")
	if code != 400 || !strings.Contains(body, filepath.Base(r.file)+":") {
		t.Fatalf("bad reload: %d %s", code, body)
	}
	if vs := r.backends(t); len(vs) != 3 {
		t.Fatalf("bad reload changed the backends: %v", vs)
	}
	r.exchange(t, sids["b2"])

	// A restart-only change is refused, naming the key, and changes nothing else in the file.
	r.write(t, urls[:2], "sticky:\n  tag_sids: false\n")
	code, body = httpDo(t, "POST", "http://"+r.admin+"/reload", "")
	if code != 400 || !strings.Contains(body, "sticky.tag_sids") {
		t.Fatalf("restart-only reload: %d %s", code, body)
	}
	if vs := r.backends(t); len(vs) != 3 {
		t.Fatalf("refused reload changed the backends: %v", vs)
	}

	// A good reload removes b3: it gets no new sessions, its live sessions keep working (grace).
	r.write(t, urls[:2], "")
	if code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", ""); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	for _, v := range r.backends(t) {
		if v.ID == "b3" && v.State != "draining" {
			t.Fatalf("removed backend is %s", v.State)
		}
	}
	for i := 0; i < 6; i++ {
		if _, owner := r.session(t); owner == "b3" {
			t.Fatal("a new session went to a removed backend")
		}
	}
	r.exchange(t, sids["b3"])
	metrics = r.metrics(t)
	if !strings.Contains(metrics, `sioproxy_reloads_total{result="error"} 2`) || !strings.Contains(metrics, `sioproxy_reloads_total{result="ok"} 1`) {
		t.Errorf("reload metrics wrong: %s", grep(metrics, "reloads_total"))
	}
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestDrainDeadlineClosesSessions(t *testing.T) {
	urls := demoBackends(t, 2)
	r := startDaemon(t, urls, "")
	var onB1 []string
	for len(onB1) < 4 {
		sid, owner := r.session(t)
		if owner == "b1" {
			onB1 = append(onB1, sid)
		}
	}
	// Each client keeps a long-poll pending, as real clients do: the drain closes a session through
	// the process that holds its pending poll, which the backend answers with a close packet.
	answers := make(chan string, len(onB1))
	for _, sid := range onB1 {
		go func() {
			_, body := httpDo(t, "GET", "http://"+r.addr+"/socket.io/?EIO=4&transport=polling&sid="+sid, "")
			answers <- body
		}()
	}
	waitUntil(t, func() bool { return r.d.bal.Snapshot().ByID("b1").InFlight.Load() == int64(len(onB1)) })
	start := time.Now()
	if code, body := httpDo(t, "POST", "http://"+r.admin+"/backends/b1/drain?deadline=200ms&rate=20", ""); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	for range onB1 {
		select {
		case body := <-answers:
			if !sticky.HasClosePacket([]byte(body)) {
				t.Errorf("a pending poll of a drained session was answered %q, want a close packet", body)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("pending polls not answered 5s after a 200ms drain deadline")
		}
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Fatalf("sessions closed before the deadline (%v)", el)
	}
	for _, sid := range onB1 {
		if code, _ := httpDo(t, "POST", "http://"+r.addr+"/socket.io/?EIO=4&transport=polling&sid="+sid, "3"); code != 400 {
			t.Errorf("a closed session still answers: %d", code)
		}
	}
}

// A drain with rate=NaN (or any value the scheduler cannot take) is refused with 400, and the
// process stays up (it used to panic a second later).
func TestDrainBadRateIsRefused(t *testing.T) {
	urls := demoBackends(t, 2)
	r := startDaemon(t, urls, "")
	for _, q := range []string{"deadline=1s&rate=NaN", "deadline=1s&rate=Inf", "deadline=1s&rate=-1", "deadline=1s&rate=0", "deadline=-1s", "deadline=100000h"} {
		if code, body := httpDo(t, "POST", "http://"+r.admin+"/backends/b1/drain?"+q, ""); code != 400 {
			t.Errorf("drain?%s: %d %s, want 400", q, code, body)
		}
	}
	r.session(t) // alive and placing sessions
}

// Adding a Consul service on reload ([chat] to [chat, chat2]) used to kill the process (the Consul
// gauges were registered again). The watch set is replaced, the gauges stay registered once.
func TestReloadAddsConsulService(t *testing.T) {
	urls := demoBackends(t, 1)
	consul := "discovery:\n  consul:\n    address: 127.0.0.1:1\n    services: [chat]\n" // nothing listens there
	r := startDaemon(t, urls, consul)
	r.write(t, urls, "discovery:\n  consul:\n    address: 127.0.0.1:1\n    services: [chat, chat2]\n")
	if code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", ""); code != 200 {
		t.Fatalf("reload adding a Consul service: %d %s", code, body)
	}
	r.write(t, urls, "discovery:\n  consul:\n    address: 127.0.0.2:1\n    services: [chat2]\n")
	if code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", ""); code != 200 {
		t.Fatalf("reload changing the Consul address: %d %s", code, body)
	}
	m := r.metrics(t)
	if n := strings.Count(m, "\nsioproxy_consul_healthy "); n != 1 {
		t.Fatalf("sioproxy_consul_healthy appears %d times: %s", n, grep(m, "consul"))
	}
	r.session(t)
	ws := r.d.disco.current.Load()
	if ws == nil || len(ws.services) != 1 || ws.services[0] != "chat2" {
		t.Fatalf("current watch set: %+v", ws)
	}
}

// A reload whose discovery cannot be built (an unreadable Consul CA file) is refused and the running
// watch set is kept, whole.
func TestReloadWithBadDiscoveryKeepsTheRunningOne(t *testing.T) {
	urls := demoBackends(t, 1)
	r := startDaemon(t, urls, "discovery:\n  consul:\n    address: 127.0.0.1:1\n    services: [chat]\n")
	before := r.d.disco.current.Load()
	r.write(t, urls, "discovery:\n  consul:\n    address: 127.0.0.1:1\n    services: [chat, other]\n    tls:\n      ca_file: /nonexistent/ca.pem\n")
	code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", "")
	if code != 400 || !strings.Contains(body, "ca.pem") {
		t.Fatalf("reload with a missing CA file: %d %s, want 400 naming the file", code, body)
	}
	if now := r.d.disco.current.Load(); now != before || before.cancel == nil {
		t.Fatal("a refused reload replaced or stopped the running watch set")
	}
	if r.d.config().Discovery.Consul.Services[0] != "chat" || len(r.d.config().Discovery.Consul.Services) != 1 {
		t.Fatal("a refused reload changed the running config")
	}
}

// Reloads while sessions are served, under the race detector.
func TestReloadWhileServing(t *testing.T) {
	urls := demoBackends(t, 2)
	r := startDaemon(t, urls, "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			r.write(t, urls, fmt.Sprintf("proxy:\n  dial_timeout: %ds\n  max_body_bytes: %d\n", 1+i%2, 100000+i))
			r.d.Reload()
		}
	}()
	for i := 0; i < 20; i++ {
		r.session(t)
	}
	<-done
	if got := r.d.config().Proxy.MaxBodyBytes; got != 100009 {
		t.Fatalf("last reload not applied: max_body_bytes %d", got)
	}
}

// The admin listener is exclusive (no SO_REUSEPORT: two processes would split /metrics and drains),
// while the client listener is shared (a new process starts beside the old one).
func TestAdminListenerIsExclusive(t *testing.T) {
	urls := demoBackends(t, 1)
	a := startDaemon(t, urls, "")
	dir := t.TempDir()
	clash := filepath.Join(dir, "admin-clash.yaml")
	os.WriteFile(clash, []byte(fmt.Sprintf("listen: %s\nadmin:\n  listen: %s\nbackends:\n  - url: %s\n", "127.0.0.1:0", a.admin, urls[0])), 0o644)
	cfg, err := configs.Load(clash)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "admin") {
		t.Fatalf("a second daemon on the same admin address: %v, want an admin listen error", err)
	}
	// The same client address is fine (SO_REUSEPORT), with another admin address.
	beside := filepath.Join(dir, "beside.yaml")
	os.WriteFile(beside, []byte(fmt.Sprintf("listen: %s\nadmin:\n  listen: 127.0.0.1:0\nbackends:\n  - url: %s\n", a.addr, urls[0])), 0o644)
	cfg, err = configs.Load(beside)
	if err != nil {
		t.Fatal(err)
	}
	d, err = New(cfg, Options{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Listening():
	case err := <-done:
		t.Fatalf("a daemon beside the first on its client address did not start: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// mirror.consul_service reloads through discovery: the shadow service joins the watch set.
func TestReloadMirrorConsulService(t *testing.T) {
	urls := demoBackends(t, 2)
	shadow := "mirror:\n  enabled: true\n  backends:\n    - url: " + urls[1] + "\n"
	r := startDaemon(t, urls[:1], shadow)
	if ws := r.d.disco.current.Load(); ws.consul != nil {
		t.Fatal("a Consul watch runs without discovery")
	}
	r.write(t, urls[:1], "mirror:\n  enabled: true\n  consul_service: shadow\ndiscovery:\n  consul:\n    address: 127.0.0.1:1\n")
	if code, body := httpDo(t, "POST", "http://"+r.admin+"/reload", ""); code != 200 {
		t.Fatalf("reload of mirror.consul_service: %d %s", code, body)
	}
	ws := r.d.disco.current.Load()
	if ws.consul == nil || ws.shadow != "shadow" {
		t.Fatalf("after the reload the watch set is %+v, want a Consul watch of the shadow service", ws)
	}
	r.session(t)
}
