//go:build conformance

package eioserver

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The conformance test runs the real socket.io-client (npm) against the server in polling,
// upgrade and websocket modes. Run it with
//
//	go test -tags conformance -run Conformance ./eioserver/
//
// NODE_MODULES points at a node_modules holding socket.io-client@4 (default ../test/node/node_modules).
const conformanceScript = `
const { io } = require("socket.io-client");
const [url, mode] = process.argv.slice(1);
const opts = { forceNew: true, reconnection: false, timeout: 5000 };
if (mode === "polling") opts.transports = ["polling"];
if (mode === "websocket") opts.transports = ["websocket"];
if (mode === "upgrade") opts.transports = ["polling", "websocket"];
const socket = io(url, opts);
let first = "";
socket.io.once("open", () => { first = socket.io.engine.transport.name; }); // transport at handshake
const fail = (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); };
setTimeout(() => fail("timeout"), 8000);
socket.on("connect_error", fail);
socket.on("connect", async () => {
  try {
    if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") {
      await new Promise((res) => socket.io.engine.once("upgrade", res));
    }
    const echo = await socket.emitWithAck("echo", "hi");
    const buf = Buffer.from([0, 1, 2, 253, 254, 255]);
    const bin = await socket.emitWithAck("echo", buf);
    const who = await socket.emitWithAck("whoami");
    const got = new Promise((res) => socket.once("news", (...a) => res(a)));
    await socket.emitWithAck("ping-me");
    const news = await got;
    const sid = socket.io.engine.id;
    await new Promise((res) => setTimeout(res, 400)); // several heartbeats (pingInterval 100 ms)
    const again = await socket.emitWithAck("whoami");
    if (socket.io.engine.id !== sid || again.backend !== "conf") throw new Error("session lost over heartbeats");
    console.log(JSON.stringify({
      first, echo, who,
      binOk: Buffer.isBuffer(bin.data) && bin.data.equals(buf), binBackend: bin.backend,
      news: [news[0], Buffer.isBuffer(news[1]) ? news[1].toString("hex") : null],
    }));
    socket.disconnect();
    process.exit(0);
  } catch (e) { fail(e); }
});
`

func TestConformanceSocketIOClient(t *testing.T) {
	mods := os.Getenv("NODE_MODULES")
	if mods == "" {
		mods = filepath.Join("..", "test", "node", "node_modules")
	}
	mods, _ = filepath.Abs(mods)
	if _, err := os.Stat(filepath.Join(mods, "socket.io-client")); err != nil {
		t.Fatalf("socket.io-client not installed in %s: %v", mods, err)
	}
	_, base := startServer(t, Options{Name: "conf", PingInterval: 100 * time.Millisecond, PingTimeout: 200 * time.Millisecond}, func(srv *Server) {
		srv.OnEvent("ping-me", func(s *Socket, _ []json.RawMessage, ack func(...any)) {
			s.Emit("news", "fresh", []byte{0xca, 0xfe})
			ack()
		})
	})
	for _, tc := range []struct{ mode, first, transport string }{
		{"polling", "polling", "polling"},
		{"upgrade", "polling", "websocket"},
		{"websocket", "websocket", "websocket"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			cmd := exec.CommandContext(testCtx(t), "node", "-e", conformanceScript, base, tc.mode)
			cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			var r struct {
				First      string          `json:"first"`
				Echo       json.RawMessage `json:"echo"`
				Who        json.RawMessage `json:"who"`
				BinOk      bool            `json:"binOk"`
				BinBackend string          `json:"binBackend"`
				News       []any           `json:"news"`
			}
			line := strings.TrimSpace(string(out))
			if err := json.Unmarshal([]byte(line[strings.LastIndexByte(line, '\n')+1:]), &r); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			if r.First != tc.first || string(r.Echo) != `{"backend":"conf","data":"hi"}` ||
				string(r.Who) != `{"backend":"conf","transport":"`+tc.transport+`"}` ||
				!r.BinOk || r.BinBackend != "conf" || len(r.News) != 2 || r.News[0] != "fresh" || r.News[1] != "cafe" {
				t.Fatalf("unexpected result %s", line)
			}
		})
	}
}
