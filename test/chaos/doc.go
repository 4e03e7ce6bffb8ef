// Package chaos is sioproxy's chaos soak: two replicas of the real binary behind a real HAProxy in
// `mode tcp` (round robin over connections, so that the requests of one session cross replicas),
// real socket.io@4 backends registered in a real Consul agent with HTTP checks, and real
// socket.io-client v4 and v2 sessions in every transport mode, each emitting acked events
// (test/node/soak.js). While they run, the soak SIGKILLs a backend and restarts it, puts one in
// Consul maintenance and back, restarts the Consul agent, reloads both replicas with SIGHUP to add
// a Consul service, replaces each replica in turn beside itself (SO_REUSEPORT: the new process on
// the same address, then SIGTERM to the old one), drains the added service's backend with a
// deadline through the admin API, and reloads again to remove the service.
//
// At the end it asserts that no acked emit was lost while its session stayed connected, that
// backends answered "Session ID unknown" only for sessions of a killed backend, that every client
// is connected again, that each replica's goroutines, descriptors and RSS are back within 10% of
// their baseline once the clients have left, and that no replica logged an error-level line that
// the kill does not explain. It prints its figures as a table (docs/chaos.md keeps one).
//
// From the module root, after `cd test/node && npm ci` and `test/consul/build.sh`:
//
//	go test -count=1 -v ./test/chaos/                        # 60 s of chaos, 1,000 clients (as in CI)
//	go test -count=1 -v -timeout 30m ./test/chaos/ -soak=10m # longer: the events repeat every 60 s
//	SIOPROXY_SOAK=10m SIOPROXY_SOAK_CLIENTS=200 go test -count=1 -v -timeout 30m ./test/chaos/
//	go test -count=1 -v ./test/chaos/ -soak-doc               # also rewrite the table in docs/chaos.md
package chaos
