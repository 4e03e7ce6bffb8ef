package k8se2e

import (
	"fmt"
	"os"
	"testing"

	"sioproxy/health/kubetest"
	"sioproxy/test/testkit"
)

// Addresses on the namespace's loopback: the API server and etcd, the backends (pods), and
// a /23 for the 250 endpoints of a big service (nothing listens there).
const (
	apiHost  = "10.213.0.1"
	bigRange = "10.214.0.0/23"
)

// podIP is the address of the backend chat-n.
func podIP(n int) string { return fmt.Sprintf("10.213.0.%d", 10+n) }

func TestMain(m *testing.M) {
	code, child := testkit.InNetns(apiHost, podIP(1), podIP(2), podIP(3), podIP(4), bigRange)
	if !child || code != 0 {
		os.Exit(code)
	}
	if err := kubetest.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "k8se2e: %v; run test/k8s/build.sh (and apt-get install etcd-server kubernetes-client)\n", err)
		os.Exit(1)
	}
	testkit.Main(m, testkit.Requirements{
		Package:     "k8se2e",
		Proxy:       true,
		NodeModules: []string{"socket.io", "socket.io-client"},
		Hint: "run the end-to-end setup first: `cd test/node && npm ci`, `test/k8s/build.sh`, " +
			"`apt-get install etcd-server kubernetes-client` (see README, Testing), then `go test ./test/k8se2e/`",
	})
}
