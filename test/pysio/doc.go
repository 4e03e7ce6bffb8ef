// Package pysio runs python-socketio, the second Socket.IO implementation, end to end through the
// sioproxy binary: Debian's python3-socketio 5.x / python3-engineio 4.x under Debian's
// /usr/bin/python3 (or $SIOPROXY_PYTHON), beside the npm socket.io@4 packages of test/node.
//
//   - server.py: python-socketio's AsyncServer in aiohttp, as the backends behind the proxy, with
//     real socket.io-client@4 clients (test/node/clients.js) in every transport mode, a browser-like
//     Origin checked by python-engineio's default same-origin rule, and a backend killed under held
//     sessions;
//   - client.py: python-socketio's clients (socketio.AsyncClient on aiohttp, socketio.Client on
//     requests and websocket-client) through the proxy against real socket.io@4 backends
//     (test/node/backend.js), each request of each session recorded by the client itself and
//     cross-checked with the backend's count.
//
// The Python packages come from Debian (./test/run.sh installs them when missing); a missing one
// fails the test binary with a hint.
package pysio
