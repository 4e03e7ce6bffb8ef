// Package fronts runs sioproxy behind the proxies that sit in front of it in production: a real
// HAProxy in HTTP mode (which sends header names in lower case, as HTTP/2 gateways and Envoy do)
// and a real nginx, both Debian packages run as child processes with configs generated in the
// test's temporary directory. Through each, real socket.io-client@4 and @2 sessions in every mode
// (polling, polling then upgrade, WebSocket only) must connect, stick to one backend, upgrade where
// asked and spread over three real Socket.IO servers, with no backend counted as failing (issue 10,
// point 1).
//
//	go test -count=1 -v ./test/fronts/
package fronts
