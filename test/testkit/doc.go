// Package testkit is the shared harness of sioproxy's end-to-end tests (test/e2e, test/consule2e,
// test/balancee2e, test/browser, test/mirror, test/pysio): it checks and locates what the tests
// need (node, test/node/node_modules, Chromium, the Consul agent), builds the sioproxy binary once
// per test binary, and runs child processes (real Socket.IO backends, clients, proxies) in their
// own process groups with their output kept for assertions and written to
// tmp/e2e-logs/<package>/<test>/.
//
// A test package calls Main from its TestMain:
//
//	func TestMain(m *testing.M) {
//		testkit.Main(m, testkit.Requirements{Package: "e2e", Proxy: true, NodeModules: []string{"socket.io"}})
//	}
//
// Missing dependencies fail the test binary with a message saying how to install them; nothing is
// ever skipped.
package testkit
