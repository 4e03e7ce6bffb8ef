package browser

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// backend is a node backend.js process (a real Socket.IO server, test/node).
type backend struct {
	*proc
	Name string
	Port int
}

// backendEvent is one JSON line of backend.js.
type backendEvent struct {
	Event     string `json:"event"`
	SID       string `json:"sid"`
	Transport string `json:"transport"`
	Code      int    `json:"code"`
	Message   string `json:"message"`
	URL       string `json:"url"`
}

// events decodes the backend's JSON lines from index from on.
func (b *backend) events(from int) []backendEvent {
	lines, _ := b.snapshot()
	var out []backendEvent
	for _, l := range lines[min(from, len(lines)):] {
		var ev backendEvent
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Event != "" {
			out = append(out, ev)
		}
	}
	return out
}

// mark is the number of lines the backend has printed so far.
func (b *backend) mark() int {
	lines, _ := b.snapshot()
	return len(lines)
}

// waitEvent waits for an event of kind for sid, printed at line from or later.
func (b *backend) waitEvent(from int, kind, sid string) (backendEvent, error) {
	var ev backendEvent
	_, _, err := b.waitLine(from, 10*time.Second, func(l string) bool {
		var got backendEvent
		if json.Unmarshal([]byte(l), &got) != nil || got.Event != kind || got.SID != sid {
			return false
		}
		ev = got
		return true
	})
	return ev, err
}

// startBackends starts n Socket.IO servers of major version (4 or 2) named prefix-1..n; waitReady
// waits until they listen.
func startBackends(t *testing.T, version, prefix string, n int) []*backend {
	t.Helper()
	bs := make([]*backend, n)
	for i := range bs {
		port := freePort(t)
		name := fmt.Sprintf("%s-%d", prefix, i+1)
		p := startProc(t, procSpec{
			name: "backend " + name,
			dir:  nodeDir,
			bin:  nodeBin,
			args: []string{"backend.js", "--port", strconv.Itoa(port), "--name", name, "--version", version},
		})
		bs[i] = &backend{proc: p, Name: name, Port: port}
	}
	return bs
}

// waitReady waits until every backend has printed its ready line.
func waitReady(t *testing.T, bs ...*backend) {
	t.Helper()
	for _, b := range bs {
		if _, _, err := b.waitLine(0, 60*time.Second, func(l string) bool {
			var ev backendEvent
			return json.Unmarshal([]byte(l), &ev) == nil && ev.Event == "ready"
		}); err != nil {
			t.Fatalf("%v\n%s", err, b.tail(20))
		}
	}
}

// startProxy starts sioproxy in front of bs and returns its base URL.
func startProxy(t *testing.T, bs []*backend) string {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	args := []string{"-listen", addr, "-log-level", "warn"}
	for _, b := range bs {
		args = append(args, "-backend", fmt.Sprintf("http://127.0.0.1:%d", b.Port))
	}
	p := startProc(t, procSpec{name: "sioproxy", dir: moduleRoot, merge: true, bin: proxyBin, args: args})
	waitTCP(t, p, addr, 30*time.Second)
	return "http://" + addr
}
