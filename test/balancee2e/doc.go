// Package balancee2e holds the end-to-end tests of sioproxy's balancer: the real proxy binary in
// front of three real Socket.IO v4 servers (test/node/backend.js), driven by real socket.io-client
// sessions (sessions.js, which can give every session its own X-Forwarded-For). Every client
// connects from 127.0.0.1, as from behind one NAT.
//
// Run from the module root after `cd test/node && npm ci`:
//
//	go test -count=1 -v ./test/balancee2e/
//
// The tests log their measurements (splits, reconnect times, admission rates); docs/balancing.md
// quotes them. TestMain (test/testkit) builds ./cmd/sioproxy once (or uses $SIOPROXY_BIN); the output
// of every process is in tmp/e2e-logs/balancee2e/.
package balancee2e
