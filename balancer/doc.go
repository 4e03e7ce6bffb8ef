// Package balancer places new Engine.IO sessions on backends.
//
// The backend set is an immutable [Snapshot] swapped whole behind an atomic pointer by
// [Balancer.Update]; placement ([Balancer.Place]) is a pure function of the snapshot, the request's
// [Pick] and the per-backend live counters ([Stats]), and takes no lock. Stats belong to a backend
// ID, not to a snapshot, so counts, ejections, slow-start ramps and admission buckets survive
// reloads and discovery changes.
//
// Policies are small structs behind the [Policy] interface: [RoundRobin] (smooth weighted, like
// nginx), [LeastSessions], [P2C] (power of two choices, the default) and [Hash] (weighted
// rendezvous hashing with bounded loads). On top of any policy the Balancer applies weights,
// draining, passive ejection, slow start and reconnect-storm admission (a token bucket of
// handshakes and a cap on live sessions per backend).
//
// The package does no I/O: clock and randomness are injected ([WithClock], [WithRand]).
package balancer
