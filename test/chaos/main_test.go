package chaos

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"sioproxy/test/testkit"
)

// Flags of the soak; each has an environment variable, which the flag overrides.
var (
	soakFlag    = flag.Duration("soak", envDuration("SIOPROXY_SOAK", 60*time.Second), "chaos duration ($SIOPROXY_SOAK); the events repeat every 60 s")
	clientsFlag = flag.Int("soak-clients", envInt("SIOPROXY_SOAK_CLIENTS", 1000), "client sessions ($SIOPROXY_SOAK_CLIENTS)")
	docFlag     = flag.Bool("soak-doc", false, "write the run's table into docs/chaos.md")
)

func envDuration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		fmt.Fprintf(os.Stderr, "chaos: $%s=%q is not a positive duration\n", name, v)
		os.Exit(2)
	}
	return d
}

func envInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "chaos: $%s=%q is not a positive number\n", name, v)
		os.Exit(2)
	}
	return n
}

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "chaos",
		Proxy:       true,
		Consul:      true,
		Tools:       []string{"haproxy"},
		NodeModules: []string{"socket.io", "socket.io-client", "socket.io-client-v2"},
		Hint: "run the end-to-end setup first: ./test/run.sh e2e installs it (`cd test/node && npm ci`, " +
			"`test/consul/build.sh`, and Debian's haproxy), then `go test ./test/chaos/`",
	})
}
