// Package hostile holds the front-door tests of sioproxy (issue 10): a raw-socket driver writes
// requests byte for byte, as broken clients, other proxies and attackers do, to the real proxy
// binary in front of real Socket.IO servers (test/node/backend.js), and checks for each case its
// answer, that no backend counted a failure, that no session outlives the case, that the
// connection (when the answer keeps it open) and a new one still work, and that the process lives.
//
// CASES.md lists every case with the answer expected and what the proxy gave before the fixes.
//
// Run from the module root after `cd test/node && npm ci`:
//
//	go test -count=1 -v ./test/hostile/
package hostile
