//go:build conformance

package demo

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sioproxy/eioserver/eiotest"
)

// TestDemoJSClient runs web/demo.js under node with a tiny DOM stub, fetch and the npm `ws`
// WebSocket, against two demo backends: the page must show its backend, upgrade to websocket,
// and receive a chat message sent from another backend. Run with
//
//	NODE_MODULES=.../node_modules go test -tags conformance -run DemoJS ./demo/
const demoJSHarness = `
const fs = require("fs"), vm = require("vm");
const [origin, script] = process.argv.slice(1);
const els = {};
const el = (id) => els[id] || (els[id] = { id, textContent: "", className: "", value: "", disabled: false,
  children: [], scrollTop: 0, scrollHeight: 0, listeners: {},
  appendChild(c) { this.children.push(c); }, addEventListener(t, f) { this.listeners[t] = f; } });
const document = { getElementById: el,
  createElement: () => ({ children: [], appendChild(c) { this.children.push(c); }, textContent: "" }),
  createTextNode: (text) => ({ textContent: text }) };
const u = new URL(origin);
const window = { WebSocket: require("ws") };
const ctx = { window, document, location: { protocol: u.protocol, host: u.host },
  WebSocket: window.WebSocket, setTimeout, clearTimeout, Promise, JSON, Math, Date, encodeURIComponent,
  fetch: (p, o) => fetch(new URL(p, origin), o) };
vm.runInNewContext(fs.readFileSync(script, "utf8"), ctx);
const deadline = Date.now() + 8000;
let ready = false;
(function check() {
  const msgs = el("messages").children;
  const up = el("transport").textContent === "websocket" && el("backend").textContent !== "" && el("sid").textContent !== "";
  if (up && !ready) { ready = true; console.log("READY"); }
  if (up && msgs.length > 0) {
    const li = msgs[msgs.length - 1];
    console.log(JSON.stringify({ backend: els.backend.textContent, transport: els.transport.textContent,
      sid: els.sid.textContent, meta: li.children[0].textContent, text: li.children[1].textContent }));
    process.exit(0);
  }
  if (Date.now() > deadline) { console.log("timeout", JSON.stringify(Object.keys(els).map((k) => [k, els[k].textContent]))); process.exit(1); }
  setTimeout(check, 20);
})();
`

func TestDemoJSClient(t *testing.T) {
	mods := os.Getenv("NODE_MODULES")
	if mods == "" {
		mods = filepath.Join("..", "test", "node", "node_modules")
	}
	mods, _ = filepath.Abs(mods)
	urls := startDemo(t, 2)
	script, _ := filepath.Abs(filepath.Join("web", "demo.js"))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "-e", demoJSHarness, urls[0], script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Once the page is up on backend-1 and upgraded, a message sent to backend-2 must reach it.
	lines := bufio.NewScanner(stdout)
	var got string
	for lines.Scan() {
		got = lines.Text()
		if got != "READY" {
			continue
		}
		c, err := eiotest.Dial(ctx, urls[1]+"/socket.io/", eiotest.WebSocket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.EmitAck(ctx, "chat", "hi from backend-2"); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v, last output %s", err, got)
	}
	for _, want := range []string{`"backend":"backend-1"`, `"transport":"websocket"`, `via backend-2`, `"text":"hi from backend-2"`} {
		if !strings.Contains(got, want) {
			t.Fatalf("page state %s lacks %s", got, want)
		}
	}
}
