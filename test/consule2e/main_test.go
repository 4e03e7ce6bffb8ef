package consule2e

import (
	"testing"

	"sioproxy/test/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m, testkit.Requirements{
		Package:     "consule2e",
		Proxy:       true,
		Consul:      true,
		NodeModules: []string{"socket.io", "socket.io-client"},
		Hint: "run the end-to-end setup first: `cd test/node && npm ci` and `test/consul/build.sh` " +
			"(see README, Testing), then `go test ./test/consule2e/`",
	})
}
