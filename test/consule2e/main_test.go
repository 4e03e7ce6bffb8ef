package consule2e

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

// Paths resolved once by TestMain.
var (
	moduleRoot string // directory of the sioproxy go.mod
	nodeDir    string // test/node
	proxyBin   string // the sioproxy binary under test
	nodeBin    string // node
)

const setupHint = "run the end-to-end setup first: `cd test/node && npm ci` and `test/consul/build.sh` " +
	"(see README, Testing), then `go test ./test/consule2e/`"

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "consule2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "consule2e: %v\n", err)
		os.Exit(1)
	}
	if err := setup(tmp); err != nil {
		os.RemoveAll(tmp)
		fmt.Fprintf(os.Stderr, "consule2e: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// setup finds the module root, checks node, node_modules and the Consul binary, and builds the
// proxy once into tmp.
func setup(tmp string) error {
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
	if nodeBin, err = exec.LookPath("node"); err != nil {
		return fmt.Errorf("node not found on PATH (install Node.js >= 18); %s", setupHint)
	}
	for _, pkg := range []string{"socket.io", "socket.io-client"} {
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", pkg, "package.json")); err != nil {
			return fmt.Errorf("%s/node_modules/%s is missing; %s", nodeDir, pkg, setupHint)
		}
	}
	if _, err := consultest.Binary(); err != nil {
		return fmt.Errorf("%v; %s", err, setupHint)
	}
	if bin := os.Getenv("SIOPROXY_BIN"); bin != "" {
		proxyBin = bin
		return nil
	}
	proxyBin = filepath.Join(tmp, "sioproxy")
	build := exec.Command("go", "build", "-o", proxyBin, "./cmd/sioproxy")
	build.Dir = moduleRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/sioproxy: %w", err)
	}
	return nil
}
