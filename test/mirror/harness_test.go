package mirrore2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"sioproxy/balancer"
	"sioproxy/configs"
	"sioproxy/daemon"
	"sioproxy/proxy"
	"sioproxy/proxy/mirror"
	"sioproxy/sticky"
	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "mirror",
		NodeModules: []string{"socket.io", "socket.io-client", "socket.io-v2", "socket.io-client-v2"},
	})
}

// dir is this package's directory (server.js, clients.js).
func dir() string { return filepath.Join(testkit.Root(), "test", "mirror") }

// server is one node server.js process.
type server struct {
	*testkit.Proc
	name string
	port int
}

func (s *server) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// startServer starts server.js in a role (primary or shadow) and Socket.IO version (4 or 2), with
// extra arguments (--deflate 1), and waits until it listens.
func startServer(t *testing.T, name, role, version string, extra ...string) *server {
	t.Helper()
	port := testkit.FreePort(t)
	p := testkit.Start(t, testkit.Command{Name: name, Dir: dir(), Bin: testkit.Node(),
		Args: append([]string{"server.js", "--port", fmt.Sprint(port), "--name", name, "--role", role, "--version", version}, extra...)})
	if _, _, err := p.WaitLine(0, 15*time.Second, func(l string) bool { return strings.Contains(l, `"ready"`) }); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, p.Tail(20))
	}
	return &server{Proc: p, name: name, port: port}
}

// getJSON GETs a URL into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// events merges the per-client event lists recorded by servers.
func events(t *testing.T, servers ...*server) map[string][]string {
	t.Helper()
	all := map[string][]string{}
	for _, s := range servers {
		var m map[string][]string
		getJSON(t, "http://"+s.addr()+"/__events", &m)
		for c, evs := range m {
			all[c] = append(all[c], evs...)
		}
	}
	return all
}

// specs turns servers into balancer specs.
func specs(servers ...*server) []balancer.Spec {
	out := make([]balancer.Spec, len(servers))
	for i, s := range servers {
		out[i] = balancer.Spec{ID: s.name, Addr: s.addr(), Weight: 1, State: balancer.Active, Source: "test"}
	}
	return out
}

// newMirror builds an enabled mirror over shadow servers.
func newMirror(shadows []*server, opts ...mirror.Option) *mirror.Mirror {
	bal := balancer.New(balancer.NewLeastSessions())
	bal.Update(specs(shadows...))
	m := mirror.New(testLogger(), bal, append([]mirror.Option{mirror.WithCloseGrace(5 * time.Second)}, opts...)...)
	m.Enable(true)
	return m
}

// startProxy runs a proxy in process over the primaries, mirroring through pm (nil: none). It
// returns the client URL.
func startProxy(t *testing.T, primaries []*server, pm proxy.Mirror) string {
	t.Helper()
	bal := balancer.New(balancer.NewRoundRobin(), balancer.WithTagger(sticky.TagFor))
	bal.Update(specs(primaries...))
	var opts []proxy.Option
	if pm != nil {
		opts = append(opts, proxy.WithMirror(pm))
	}
	p := proxy.New(zap.NewNop(), bal, daemon.ProxySettings(configs.Default()), opts...)
	ln, err := proxy.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		<-served
	})
	return "http://" + ln.Addr().String()
}

// summary is the output of clients.js.
type summary struct {
	OK            int       `json:"ok"`
	Failed        int       `json:"failed"`
	Errors        []string  `json:"errors"`
	Latencies     []float64 `json:"latencies"`
	ShadowAnswers int       `json:"shadowAnswers"`
	Welcome       int       `json:"welcome"`
}

// percentile returns the q-quantile (0..1) of v, nearest rank below; 0 for no samples.
func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

// clientRun is a running clients.js; wait with (*clientRun).wait.
type clientRun struct{ *testkit.Proc }

func startClients(t *testing.T, url, mode, version, tag string, n, emits int) *clientRun {
	t.Helper()
	return startClientsC(t, url, mode, version, tag, n, emits, 50)
}

// startClientsC is startClients with a concurrency.
func startClientsC(t *testing.T, url, mode, version, tag string, n, emits, concurrency int) *clientRun {
	t.Helper()
	return &clientRun{testkit.Start(t, testkit.Command{Name: "clients " + tag, Dir: dir(), Bin: testkit.Node(),
		Args: []string{"clients.js", "--url", url, "--mode", mode, "--n", fmt.Sprint(n), "--emits", fmt.Sprint(emits),
			"--version", version, "--tag", tag, "--concurrency", fmt.Sprint(concurrency)}})}
}

func (r *clientRun) wait(t *testing.T) summary {
	t.Helper()
	if err := r.Wait(testkit.ClientsRunTimeout); err != nil {
		t.Fatalf("%s: %v\n%s", r.Name, err, r.Tail(20))
	}
	out := strings.Join(r.Stdout(), "\n")
	var s summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%s output %q: %v\n%s", r.Name, out, err, r.Tail(20))
	}
	return s
}

// waitIdle waits until every mirrored session has ended.
func waitIdle(t *testing.T, m *mirror.Mirror) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := m.WaitIdle(ctx); err != nil {
		t.Fatalf("mirrored sessions still active: %d (%v)", m.Active(), err)
	}
}

// wantSequence is the event list clients.js produces for one client.
func wantSequence(emits int) []string {
	out := make([]string, emits)
	for i := range out {
		switch i {
		case 7:
			out[i] = fmt.Sprintf("bin:%d", i)
		case 13:
			out[i] = fmt.Sprintf("diff:%d", i)
		default:
			out[i] = fmt.Sprintf("echo:%d", i)
		}
	}
	return out
}

// testLogger logs at debug level when MIRROR_E2E_LOG is set.
func testLogger() *zap.Logger {
	if os.Getenv("MIRROR_E2E_LOG") == "" {
		return zap.NewNop()
	}
	l, _ := zap.NewDevelopment()
	return l
}
