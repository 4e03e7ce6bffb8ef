package browser

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Paths resolved once by TestMain.
var (
	moduleRoot string // directory of the sioproxy go.mod
	nodeDir    string // test/node
	proxyBin   string // the sioproxy binary under test
	nodeBin    string // node
	chromium   string // the Chromium executable
	scratch    string // temporary directory of this test binary (proxy binary, browser TMPDIR)
)

const setupHint = "install the browser test dependencies first: `apt-get install chromium nodejs npm` and " +
	"`cd test/node && npm ci` (or run ./test/run.sh e2e)"

func TestMain(m *testing.M) {
	code, err := runMain(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "browser tests: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runMain(m *testing.M) (int, error) {
	var err error
	if scratch, err = os.MkdirTemp("", "sioproxy-browser-"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(scratch)
	if err := setup(); err != nil {
		return 0, err
	}
	code := m.Run()
	stopDriver()
	return code, nil
}

// setup finds the module root, checks Chromium, node and node_modules, and builds the proxy once.
func setup() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("not inside the sioproxy module")
	}
	moduleRoot = filepath.Dir(gomod)
	nodeDir = filepath.Join(moduleRoot, "test", "node")

	chromium = os.Getenv("SIOPROXY_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if st, err := os.Stat(chromium); err != nil || st.IsDir() {
		return fmt.Errorf("chromium not found at %s; %s", chromium, setupHint)
	}
	if nodeBin, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("node not found on PATH; %s", setupHint)
	}
	for _, f := range append([]string{"playwright-core/package.json", "socket.io/package.json", "socket.io-v2/package.json"},
		clientLibs["4"], clientLibs["2"]) {
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", f)); err != nil {
			return fmt.Errorf("%s is missing; %s", filepath.Join(nodeDir, "node_modules", f), setupHint)
		}
	}
	if bin := os.Getenv("SIOPROXY_BIN"); bin != "" {
		proxyBin = bin
		return nil
	}
	proxyBin = filepath.Join(scratch, "sioproxy")
	build := exec.Command("go", "build", "-o", proxyBin, "./cmd/sioproxy")
	build.Dir = moduleRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/sioproxy: %w", err)
	}
	return nil
}
