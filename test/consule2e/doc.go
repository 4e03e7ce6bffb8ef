// Package consule2e holds the end-to-end tests of Consul discovery, health states and the admin
// API: the real sioproxy binary in front of real socket.io@4 servers (test/node) that are registered
// in a real `consul agent -dev` (health/consultest) with HTTP checks against them, driven by real
// socket.io-client sessions and by raw Engine.IO handshakes sent from the tests.
//
// Run from the module root after `cd test/node && npm ci` and `test/consul/build.sh`:
//
//	go test -count=1 -v ./test/consule2e/
//
// TestMain builds ./cmd/sioproxy (or uses $SIOPROXY_BIN) and fails with a clear message when
// node, test/node/node_modules or the Consul binary is missing. The tests log the propagation
// delays they measure (t.Logf).
package consule2e
