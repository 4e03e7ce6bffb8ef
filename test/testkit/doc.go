// Package testkit is the shared harness of sioproxy's end-to-end tests (test/e2e, test/consule2e,
// test/balancee2e, test/browser, test/mirror, test/pysio, and the front-door suites test/hostile,
// test/fronts, test/limits, test/upstream, test/secrets): it checks and locates what the tests need (node,
// test/node/node_modules, Chromium, the Consul agent, tools such as haproxy, nginx, openssl and
// prlimit), builds the sioproxy binary once per test binary, and runs child processes (real
// Socket.IO backends, clients, proxies) in their own process groups with their output kept for
// assertions and written to tmp/e2e-logs/<package>/<test>/.
//
// For the front door it also has a raw client (RawConn: bytes written as given, answers read
// without normalising), a raw backend in the test process (RawBackend: answers no real server
// gives), an Engine.IO polling client driven request by request (EIOClient), the admin API's
// backend states and metrics, process memory from /proc, and test certificates made with openssl.
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
