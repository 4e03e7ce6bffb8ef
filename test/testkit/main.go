package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sioproxy/health/consultest"
)

// Requirements are what the tests of one package need. Main checks them before any test runs and
// fails the test binary, naming Hint, when one is missing.
type Requirements struct {
	Package     string   // names the package in messages and its log directory
	NodeModules []string // package names, or file paths, that must exist under test/node/node_modules
	Proxy       bool     // build ./cmd/sioproxy once, or use $SIOPROXY_BIN
	Chromium    bool     // $SIOPROXY_CHROMIUM, default /usr/bin/chromium
	Consul      bool     // the Consul agent binary of health/consultest
	Tools       []string // executables looked up on PATH, then in /usr/sbin and /sbin (haproxy, nginx, openssl, prlimit)
	Hint        string   // how to install what is missing
	AfterAll    func()   // runs after the tests, before the scratch directory is removed
}

// DefaultHint is the setup advice of packages that need only node and test/node/node_modules.
const DefaultHint = "run the end-to-end setup first: `cd test/node && npm ci` (or ./test/run.sh e2e)"

// Paths resolved by Main.
var (
	root     string // directory of the sioproxy go.mod
	nodeBin  string
	proxyBin string
	chromium string
	tools    = map[string]string{}
	scratch  string // temporary directory of this test binary
	logDir   string // tmp/e2e-logs/<package> under root
)

// Main checks r, builds what it asks for, runs the tests and exits with their status.
func Main(m *testing.M, r Requirements) {
	os.Exit(run(m, r))
}

func run(m *testing.M, r Requirements) int {
	if r.Hint == "" {
		r.Hint = DefaultHint
	}
	var err error
	if scratch, err = os.MkdirTemp("", "sioproxy-"+r.Package+"-"); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", r.Package, err)
		return 1
	}
	defer os.RemoveAll(scratch)
	if err := setup(r); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", r.Package, err)
		return 1
	}
	code := m.Run()
	if r.AfterAll != nil {
		r.AfterAll()
	}
	return code
}

// setup finds the module root, checks r and builds the proxy.
func setup(r Requirements) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("not inside the sioproxy module")
	}
	root = filepath.Dir(gomod)
	logDir = filepath.Join(root, "tmp", "e2e-logs", r.Package)
	if err := os.RemoveAll(logDir); err != nil {
		return err
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	if r.Chromium {
		chromium = os.Getenv("SIOPROXY_CHROMIUM")
		if chromium == "" {
			chromium = "/usr/bin/chromium"
		}
		if st, err := os.Stat(chromium); err != nil || st.IsDir() {
			return fmt.Errorf("chromium not found at %s (SIOPROXY_CHROMIUM overrides the path); %s", chromium, r.Hint)
		}
	}
	if nodeBin, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("node not found on PATH (install Node.js >= 18); %s", r.Hint)
	}
	for _, mod := range r.NodeModules {
		p := filepath.Join(NodeDir(), "node_modules", mod)
		if !strings.Contains(mod, "/") {
			p = filepath.Join(p, "package.json")
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s is missing; %s", p, r.Hint)
		}
	}
	for _, name := range r.Tools {
		path, err := lookTool(name)
		if err != nil {
			return fmt.Errorf("%s not found on PATH nor in /usr/sbin (Debian: apt-get install %s); %s", name, toolPackage(name), r.Hint)
		}
		tools[name] = path
	}
	if r.Consul {
		if _, err := consultest.Binary(); err != nil {
			return fmt.Errorf("%v; %s", err, r.Hint)
		}
	}
	if r.Proxy {
		return buildProxy()
	}
	return nil
}

// buildProxy builds ./cmd/sioproxy into the scratch directory unless $SIOPROXY_BIN names a binary.
func buildProxy() error {
	if bin := os.Getenv("SIOPROXY_BIN"); bin != "" {
		proxyBin = bin
		return nil
	}
	proxyBin = filepath.Join(scratch, "sioproxy")
	build := exec.Command("go", "build", "-o", proxyBin, "./cmd/sioproxy")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/sioproxy: %w", err)
	}
	return nil
}

// lookTool finds an executable on PATH or in the sbin directories, which are not on every PATH.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// toolPackage names the Debian package of a tool, for the error hint.
func toolPackage(name string) string {
	switch name {
	case "prlimit":
		return "util-linux"
	case "certutil":
		return "libnss3-tools"
	}
	return name
}

// Tool is the path of an executable named in Requirements.Tools.
func Tool(name string) string {
	p, ok := tools[name]
	if !ok {
		panic("testkit.Tool(" + name + "): not in Requirements.Tools")
	}
	return p
}

// Root is the directory of the sioproxy module.
func Root() string { return root }

// NodeDir is test/node: backend.js, clients.js and node_modules.
func NodeDir() string { return filepath.Join(root, "test", "node") }

// Node is the node executable.
func Node() string { return nodeBin }

// ProxyBin is the sioproxy binary under test (empty unless Requirements.Proxy).
func ProxyBin() string { return proxyBin }

// Chromium is the Chromium executable (empty unless Requirements.Chromium).
func Chromium() string { return chromium }

// Scratch is a temporary directory of this test binary, removed when it ends.
func Scratch() string { return scratch }
