package pysio

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// pythonHint says how to install what the Python side needs.
const pythonHint = "install Debian's python3-socketio python3-engineio python3-aiohttp python3-requests python3-websocket " +
	"(./test/run.sh e2e installs them as root), and `cd test/node && npm ci`"

// python is the interpreter of the Debian packages: /usr/bin/python3 unless $SIOPROXY_PYTHON says
// otherwise (a python3 on PATH, such as a pyenv one, does not see Debian's dist-packages).
var python = "/usr/bin/python3"

// pythonArgs come first on every command line: -E ignores PYTHON* variables, -s the user's
// site-packages, so that only the Debian packages are imported.
var pythonArgs = []string{"-E", "-s"}

func TestMain(m *testing.M) {
	if p := os.Getenv("SIOPROXY_PYTHON"); p != "" {
		python = p
	}
	if err := checkPython(); err != nil {
		fmt.Fprintf(os.Stderr, "pysio: %v; %s\n", err, pythonHint)
		os.Exit(1)
	}
	testkit.Main(m, testkit.Requirements{
		Package:     "pysio",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client"},
		Hint:        pythonHint,
	})
}

// checkPython fails unless python imports the packages of server.py and client.py, in the major
// versions that speak Engine.IO 4 / Socket.IO 5 (what socket.io@4 speaks).
func checkPython() error {
	const probe = `import json, importlib.metadata as m
import aiohttp, requests, websocket, engineio, socketio
print(json.dumps({d: m.version(d) for d in ["python-socketio", "python-engineio", "aiohttp"]}))`
	out, err := exec.Command(python, append(pythonArgs, "-c", probe)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import the Python Socket.IO packages: %v: %s", python, err, strings.TrimSpace(string(out)))
	}
	var v map[string]string
	if err := json.Unmarshal(out, &v); err != nil {
		return fmt.Errorf("%s: unexpected version probe output %q", python, out)
	}
	if !strings.HasPrefix(v["python-socketio"], "5.") || !strings.HasPrefix(v["python-engineio"], "4.") {
		return fmt.Errorf("%s has python-socketio %s and python-engineio %s, want 5.x and 4.x", python, v["python-socketio"], v["python-engineio"])
	}
	return nil
}

// scriptDir is test/pysio, where server.py and client.py live.
func scriptDir() string { return filepath.Join(testkit.Root(), "test", "pysio") }

// startPyServers starts n python-socketio servers named fmt.Sprintf(format, i) for i = 1..n and
// waits until they listen. They print the event lines of backend.js, so testkit reads them alike.
func startPyServers(t *testing.T, n int, format string) []*testkit.Backend {
	t.Helper()
	bs := make([]*testkit.Backend, n)
	for i := range bs {
		name := fmt.Sprintf(format, i+1)
		args := append(append([]string{}, pythonArgs...), "server.py", "--port", "0", "--name", name)
		p := testkit.Start(t, testkit.Command{Name: "server.py " + name, Dir: scriptDir(), Bin: python, Args: args})
		bs[i] = &testkit.Backend{Proc: p, Name: name, Version: "python-socketio"}
	}
	testkit.WaitReady(t, testkit.BackendReadyTimeout, bs...)
	return bs
}

// startProxy starts sioproxy (admin listener off: its default port is shared by the machine) in
// front of the backends and waits until it accepts connections.
func startProxy(t *testing.T, bs []*testkit.Backend) *testkit.Proxy {
	t.Helper()
	args := []string{"-log-level", "info"}
	for _, u := range testkit.BackendURLs(bs) {
		args = append(args, "-backend", u)
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Args: args})
}

// pySession is one session of a client.py summary: clients.js's fields and the client's own
// record of its requests.
type pySession struct {
	testkit.ClientSession
	BackendSID string         `json:"backendSid"` // the sid as the backend knows it (whoami)
	Requests   int            `json:"requests"`   // requests completed before the session began to close
	Statuses   map[string]int `json:"statuses"`   // their statuses
}

// pySummary is the JSON summary client.py prints for one run.
type pySummary struct {
	OK        int            `json:"ok"`
	Failed    int            `json:"failed"`
	Client    string         `json:"client"`
	Mode      string         `json:"mode"`
	End       string         `json:"end"` // close, or vanish: cut mid-flight when the process ended
	Ms        int            `json:"ms"`
	ByBackend map[string]int `json:"byBackend"`
	Sessions  []pySession    `json:"sessions"`
}

// pyRun is one run of client.py: n sessions of a client flavour ("async" or "sync") in a
// transport mode, closed at the end, or left to be cut when the process ends (vanish).
type pyRun struct {
	Client, Mode string
	N            int
	Vanish       bool
}

func (r pyRun) spec() string {
	s := fmt.Sprintf("%s:%s:%d", r.Client, r.Mode, r.N)
	if r.Vanish {
		s += ":vanish"
	}
	return s
}

// runPyClients runs client.py with the runs, one after the other in one process (Python starts
// slowly on a loaded machine), and returns a summary per run and when the process had exited.
func runPyClients(t *testing.T, url string, emits int, runs []pyRun) ([]pySummary, time.Time) {
	t.Helper()
	specs := make([]string, len(runs))
	for i, r := range runs {
		specs[i] = r.spec()
	}
	args := append(append([]string{}, pythonArgs...), "client.py", "--url", url, "--runs", strings.Join(specs, ","),
		"--emits", strconv.Itoa(emits))
	p := testkit.Start(t, testkit.Command{Name: "client.py", Dir: scriptDir(), Bin: python, Args: args})
	if err := p.Wait(2 * time.Minute); err != nil {
		t.Fatalf("client.py %v: %v\n%s", args[2:], err, p.Tail(30))
	}
	exited := time.Now()
	var sums []pySummary
	for _, l := range p.Stdout() {
		var s pySummary
		if strings.HasPrefix(l, `{"ok"`) && json.Unmarshal([]byte(l), &s) == nil {
			sums = append(sums, s)
		}
	}
	if len(sums) != len(runs) {
		t.Fatalf("client.py printed %d run summaries, want %d\n%s", len(sums), len(runs), p.Tail(30))
	}
	return sums, exited
}

// runNodeClients runs clients.js (run mode) and returns its summary as soon as it is printed:
// after it, clients.js waits for its pending requests (up to 5 s), and python-engineio holds the
// pending long-poll of a closed session until its ping timeout. The process is killed when the
// test ends; the caller's checks of the backends' logs show that the closes got through.
func runNodeClients(t *testing.T, o testkit.ClientOpts) testkit.ClientSummary {
	t.Helper()
	p := testkit.Start(t, testkit.Command{Name: "clients.js " + o.Mode, Dir: testkit.NodeDir(), Bin: testkit.Node(), Args: o.Args()})
	line, _, err := p.WaitLine(0, testkit.ClientsRunTimeout, func(l string) bool { return strings.HasPrefix(l, `{"ok"`) })
	if err != nil {
		t.Fatalf("clients.js %v: %v\n%s", o.Args()[1:], err, p.Tail(30))
	}
	var s testkit.ClientSummary
	if err := json.Unmarshal([]byte(line), &s); err != nil || s.Fatal != "" {
		t.Fatalf("clients.js summary: %v %s\n%s", err, s.Fatal, p.Tail(30))
	}
	return s
}
