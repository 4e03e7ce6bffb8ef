// Package mirrore2e holds the end-to-end tests of session mirroring: an in-process proxy
// (proxy.New + balancer + proxy/mirror) in front of real Socket.IO servers (server.js, socket.io@4
// and socket.io@2 from test/node) driven by real socket.io-client sessions (clients.js).
//
// Run from the module root after `cd test/node && npm ci`:
//
//	go test ./test/mirror/
//
// MIRROR_E2E_N sets the clients per transport mode of TestMirrorCompare (default 100),
// MIRROR_E2E_LOG=1 logs the mirror at debug level, MIRROR_E2E_REPORT=file saves its report.
package mirrore2e
