// Package upstream holds the end-to-end tests of what sioproxy does towards its backends (issue 10,
// points 5, 6, 7 and 9): which requests are retried and where, a client's abort reaching the
// backend, HTTPS backends, and responses that are streams, very large, lying about their length or
// carrying trailers. Real Socket.IO servers where the behaviour is theirs; a raw backend in the test
// process where the test needs an answer no real server gives (a reset after reading a request, a
// Content-Length of 2^48).
//
//	go test -count=1 -v ./test/upstream/
package upstream
