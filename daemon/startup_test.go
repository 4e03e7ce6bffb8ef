package daemon

import (
	"io"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"sioproxy/health/consultest"
)

// slowPath forwards TCP connections to addr, each after delay: a slow network to a real Consul agent.
func slowPath(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(delay) // the network's latency
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// A process started beside a running one (the README's restart with SO_REUSEPORT) serves the running
// one's sessions from its very first request: it opens its client listener only once Consul has
// answered, even when Consul answers slowly. Before, it listened at once and told the first
// requests of those sessions "Session ID unknown" (400), ending them: found by the chaos soak.
func TestListensOnceConsulHasAnswered(t *testing.T) {
	agent := consultest.Start(t)
	u, err := url.Parse(demoBackends(t, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	if err := agent.Client().Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: "chat-1", Name: "chat", Address: u.Hostname(), Port: port,
	}); err != nil {
		t.Fatal(err)
	}
	discovery := func(addr string) string {
		return "discovery:\n  consul:\n    address: " + addr + "\n    services: [chat]\n"
	}
	old := startDaemon(t, nil, discovery(agent.Addr))
	sid, owner := old.session(t)
	if owner != "chat-1" {
		t.Fatalf("session on %q, want chat-1", owner)
	}

	start := time.Now()
	nu := startDaemon(t, nil, discovery(slowPath(t, agent.Addr, 500*time.Millisecond)))
	if waited := time.Since(start); waited < 500*time.Millisecond {
		t.Errorf("the new process listened %v after its start, before Consul could answer (500 ms away)", waited)
	}
	if n := len(nu.d.bal.Snapshot().Backends); n != 1 {
		t.Fatalf("the new process listens with %d backends, want chat-1 from Consul", n)
	}
	// The first request through the new process: a message of the old process's session.
	u2 := "http://" + nu.addr + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if code, body := httpDo(t, "POST", u2, `42["noop"]`); code != 200 {
		t.Fatalf("the old process's session through the new process: %d %s, want 200", code, body)
	}
}
