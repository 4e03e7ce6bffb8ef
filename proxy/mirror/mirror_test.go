package mirror

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/eioproto"
	"sioproxy/proxy"
)

// fakeTarget is a minimal Engine.IO 4 / Socket.IO 5 server: it acks every event with its arguments,
// except "diff", which it acks with "shadow", and records the text packets it receives.
type fakeTarget struct {
	srv   *httptest.Server
	ended chan struct{} // one value per connection that ended
	mu    sync.Mutex
	got   []string
	conn  int
}

func newFakeTarget(t *testing.T) *fakeTarget {
	ft := &fakeTarget{ended: make(chan struct{}, 64)}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ft.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer func() { ft.ended <- struct{}{} }()
		defer c.Close()
		ft.mu.Lock()
		ft.conn++
		ft.mu.Unlock()
		c.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"shadow","upgrades":[],"pingInterval":25000,"pingTimeout":20000}`))
		for {
			op, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if op == websocket.BinaryMessage {
				ft.record("<binary>")
				c.WriteMessage(websocket.BinaryMessage, msg)
				continue
			}
			ft.record(string(msg))
			if len(msg) < 2 || msg[0] != '4' {
				continue
			}
			sp, err := eioproto.DecodeSocketIO(msg[1:])
			if err != nil {
				continue
			}
			switch {
			case sp.Type == eioproto.SIOConnect:
				c.WriteMessage(websocket.TextMessage, []byte(`40{"sid":"x"}`))
				c.WriteMessage(websocket.TextMessage, []byte(`42["news",1]`))
			case sp.Type == eioproto.SIOEvent && sp.ID != eioproto.NoAck:
				var args []json.RawMessage
				json.Unmarshal(sp.Data, &args)
				reply := string(json.RawMessage("[" + string(joinRaw(args[1:])) + "]"))
				if name, _ := EventName(sp.Data); name == "diff" {
					reply = `["shadow"]`
				}
				c.WriteMessage(websocket.TextMessage, []byte("43"+itoa(sp.ID)+reply))
			case sp.Type == eioproto.SIOBinaryEvent && sp.ID != eioproto.NoAck:
				c.WriteMessage(websocket.TextMessage, []byte("461-"+itoa(sp.ID)+`[{"_placeholder":true,"num":0}]`))
			}
		}
	}))
	t.Cleanup(ft.srv.Close)
	return ft
}

func joinRaw(rs []json.RawMessage) []byte {
	var out []byte
	for i, r := range rs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	return out
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func (ft *fakeTarget) record(s string) {
	ft.mu.Lock()
	ft.got = append(ft.got, s)
	ft.mu.Unlock()
}

// received waits for the end of a shadow connection and returns what the target got.
func (ft *fakeTarget) received() []string {
	select {
	case <-ft.ended:
	case <-time.After(10 * time.Second):
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return slices.Clone(ft.got)
}

func newTestMirror(t *testing.T, ft *fakeTarget, opts ...Option) *Mirror {
	bal := balancer.New(balancer.NewLeastSessions())
	bal.Update([]balancer.Spec{{ID: "shadow", Addr: strings.TrimPrefix(ft.srv.URL, "http://"), Weight: 1, State: balancer.Active}})
	m := New(zap.NewNop(), bal, append([]Option{WithCloseGrace(2 * time.Second)}, opts...)...)
	m.Enable(true)
	return m
}

func request(uri string) *fasthttp.Request {
	req := &fasthttp.Request{}
	req.SetRequestURI(uri)
	req.Header.Set("Origin", "http://app")
	return req
}

func waitIdle(t *testing.T, m *Mirror) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v (active %d)", err, m.Active())
	}
}

func TestPollingSession(t *testing.T) {
	ft := newFakeTarget(t)
	m := newTestMirror(t, ft)
	sid := []byte("sid1")
	m.OpenPolling("sid1", request("/socket.io/?EIO=4&transport=polling&t=1&token=abc"))
	if !m.Mirrored(sid) || m.Mirrored([]byte("other")) {
		t.Fatal("Mirrored: want the opened sid only")
	}
	m.ClientPolling(sid, []byte("40"))
	m.ClientPolling(sid, []byte("421[\"echo\",1]\x1e422[\"diff\",2]\x1e3"))
	m.ServerPolling(sid, []byte("40{\"sid\":\"p\"}\x1e42[\"news\",1]\x1e431[1]\x1e432[\"primary\"]\x1e2"))
	m.ClientPolling(sid, []byte("451-3[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"))
	m.ServerPolling(sid, []byte("461-3[{\"_placeholder\":true,\"num\":0}]\x1ebAQID"))
	m.ClientPolling(sid, []byte("41\x1e1"))
	m.Close("sid1")
	waitIdle(t, m)
	if m.Mirrored(sid) {
		t.Error("a closed session is still mirrored")
	}
	want := []string{"40", `421["echo",1]`, `422["diff",2]`, `451-3["bin",{"_placeholder":true,"num":0}]`, "<binary>", "41"}
	if got := ft.received(); !slices.Equal(got, want) {
		t.Errorf("target received %q, want %q", got, want)
	}
	r := m.Report()
	if r.Acks != (AckTotals{Same: 2, Different: 1}) {
		t.Errorf("acks %+v", r.Acks)
	}
	if len(r.Divergent) != 1 || r.Divergent[0].Event != "diff" {
		t.Errorf("divergent %+v", r.Divergent)
	}
	if len(r.Samples) != 1 || r.Samples[0].Primary != `["primary"]` || r.Samples[0].Shadow != `["shadow"]` {
		t.Errorf("samples %+v", r.Samples)
	}
	if len(r.Samples) == 1 && r.Samples[0].Session != proxy.SIDHash("sid1") {
		t.Errorf("a sample names its session %q, want the sid's hash (a sid is a bearer credential)", r.Samples[0].Session)
	}
	if r.Packets.Skipped != 2 || r.Packets.Replayed != 6 || r.Sessions.Mirrored != 1 {
		t.Errorf("packets %+v sessions %+v", r.Packets, r.Sessions)
	}
	var news EventReport
	for _, e := range r.Events {
		if e.Event == "news" {
			news = e
		}
	}
	if news.PrimaryEvents != 1 || news.ShadowEvents != 1 {
		t.Errorf("news events %+v", news)
	}
}

// maskedFrame builds a masked client text frame.
func maskedFrame(op byte, payload string) []byte {
	return frame(true, op, []byte(payload), []byte{0x12, 0x34, 0x56, 0x78})
}

func TestWebSocketOnlySession(t *testing.T) {
	ft := newFakeTarget(t)
	m := newTestMirror(t, ft)
	mt := m.Tunnel("", request("/socket.io/?EIO=4&transport=websocket"), nil)
	if mt == nil {
		t.Fatal("Tunnel: want a mirrored tunnel")
	}
	client := slices.Concat(maskedFrame(OpText, "40"), maskedFrame(OpText, "3"), maskedFrame(OpText, `427["echo","x"]`), maskedFrame(OpPing, ""))
	for i := range client { // worst case: one byte at a time
		mt.FromClient(client[i : i+1])
	}
	mt.FromServer(slices.Concat(frame(true, OpText, []byte(`0{"sid":"a"}`), nil), frame(true, OpText, []byte(`40{"sid":"b"}`), nil),
		frame(true, OpText, []byte(`437["x"]`), nil), frame(true, OpText, []byte(`42["news",2]`), nil)))
	mt.Close()
	waitIdle(t, m)
	if got, want := ft.received(), []string{"40", `427["echo","x"]`}; !slices.Equal(got, want) {
		t.Errorf("target received %q, want %q", got, want)
	}
	if r := m.Report(); r.Acks != (AckTotals{Same: 1}) {
		t.Errorf("acks %+v", r.Acks)
	}
}

func TestSamplingAndDisable(t *testing.T) {
	ft := newFakeTarget(t)
	vals := []float64{0.1, 0.5, 0.29, 0.3}
	i := 0
	m := newTestMirror(t, ft, WithRand(func() float64 { v := vals[i%len(vals)]; i++; return v }))
	m.SetSample(0.3)
	for n := range vals {
		m.OpenPolling("s"+itoa(int64(n)), request("/socket.io/?EIO=4&transport=polling"))
	}
	if got := []bool{m.Mirrored([]byte("s0")), m.Mirrored([]byte("s1")), m.Mirrored([]byte("s2")), m.Mirrored([]byte("s3"))}; !slices.Equal(got, []bool{true, false, true, false}) {
		t.Errorf("sampled %v", got)
	}
	m.Enable(false)
	if m.Tunnel("", request("/socket.io/?EIO=4&transport=websocket"), nil) != nil {
		t.Error("disabled mirror teed a new tunnel")
	}
	if m.Tunnel("s1", request("/socket.io/?EIO=4&transport=websocket&sid=s1"), nil) != nil {
		t.Error("an unmirrored session's upgrade was teed")
	}
	for n := range vals {
		m.Close("s" + itoa(int64(n)))
	}
	waitIdle(t, m)
	if r := m.Report(); r.Sessions.Mirrored != 2 || r.Sessions.Skipped != 2 {
		t.Errorf("sessions %+v", r.Sessions)
	}
}

func TestMirroredDoesNotAllocate(t *testing.T) {
	ft := newFakeTarget(t)
	m := newTestMirror(t, ft)
	m.OpenPolling("abc", request("/socket.io/?EIO=4&transport=polling"))
	defer func() { m.Close("abc"); waitIdle(t, m) }()
	sid := []byte("abd")
	if n := testing.AllocsPerRun(100, func() { m.Mirrored(sid) }); n != 0 {
		t.Errorf("Mirrored allocates %v", n)
	}
}

func TestHandler(t *testing.T) {
	ft := newFakeTarget(t)
	m := newTestMirror(t, ft)
	h := m.Handler()
	tests := []struct {
		method, path string
		status       int
		enabled      bool
		sample       float64
	}{
		{"POST", "/mirror/disable", 200, false, 1},
		{"POST", "/mirror/enable?sample=0.25", 200, true, 0.25},
		{"POST", "/mirror/enable?sample=2", 400, true, 0.25},
		{"POST", "/mirror/enable?sample=NaN", 400, true, 0.25},
		{"POST", "/mirror/enable?sample=-Inf", 400, true, 0.25},
		{"GET", "/mirror/report", 200, true, 0.25},
		{"GET", "/mirror/enable", 405, true, 0.25},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.status || m.Enabled() != tt.enabled || m.Sample() != tt.sample {
			t.Errorf("%s %s: %d enabled %v sample %v", tt.method, tt.path, rec.Code, m.Enabled(), m.Sample())
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/mirror/report", nil))
	var r Report
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || !r.Enabled || len(r.Targets) != 1 {
		t.Errorf("report %s: %v", rec.Body.String(), err)
	}
}

func BenchmarkMirroredMiss(b *testing.B) {
	m := New(zap.NewNop(), balancer.New(balancer.NewLeastSessions()))
	sid := []byte("lv_VI97HAXpY6yYWAAAC")
	for b.Loop() {
		m.Mirrored(sid)
	}
}

// BenchmarkTeeFromClient measures the proxy-side cost of a mirrored WebSocket message: frame
// parsing, unmasking, Engine.IO decoding and queueing (the queue is drained by a dead shadow).
func BenchmarkTeeFromClient(b *testing.B) {
	m := New(zap.NewNop(), balancer.New(balancer.NewLeastSessions()), WithQueue(1<<20))
	m.Enable(true)
	mt := m.Tunnel("", request("/socket.io/?EIO=4&transport=websocket"), nil)
	fr := maskedFrame(OpText, `4217["echo",{"c":"client-17","i":3,"text":"hello world"}]`)
	b.SetBytes(int64(len(fr)))
	for b.Loop() {
		mt.FromClient(fr)
	}
	mt.Close()
}
