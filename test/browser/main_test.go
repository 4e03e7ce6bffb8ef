package browser

import (
	"testing"

	"sioproxy/test/testkit"
)

const setupHint = "install the browser test dependencies first: `apt-get install chromium libnss3-tools nodejs npm` and " +
	"`cd test/node && npm ci` (or run ./test/run.sh e2e)"

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "browser",
		Proxy:       true,
		Chromium:    true,
		NodeModules: []string{"playwright-core", "socket.io", "socket.io-v2", clientLibs["4"], clientLibs["2"]},
		Tools:       []string{"certutil"},
		Hint:        setupHint,
		AfterAll:    stopDriver,
	})
}
