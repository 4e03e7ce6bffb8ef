// Package e2e holds the end-to-end tests of sioproxy: the real proxy binary in front of real Socket.IO
// servers (socket.io@4 and socket.io@2, from test/node) driven by real socket.io-client sessions.
//
// Run from the module root after `cd test/node && npm ci`:
//
//	go test ./test/e2e/
//
// TestMain (test/testkit) builds ./cmd/sioproxy once (or uses $SIOPROXY_BIN) and fails with a clear
// message when node or test/node/node_modules is missing.
package e2e
