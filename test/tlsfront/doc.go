// Package tlsfront tests TLS termination end to end: real socket.io-client@4 and @2 sessions over
// https and wss in every transport mode, certificates chosen by SNI, and certificate reloads
// (SIGHUP and POST /reload) under 500 held wss sessions, none of which may close. The test CA is
// made by internal/testpki; clients trust it through NODE_EXTRA_CA_CERTS, never by skipping
// verification.
package tlsfront
