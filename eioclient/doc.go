// Package eioclient is an Engine.IO (v3 and v4) and Socket.IO (protocols 4 and 5) client built for
// load generation and end-to-end tests.
//
// It speaks the three ways a real client connects: long-polling only, polling upgraded to
// WebSocket (2probe/3probe, pause of polling, then 5), and WebSocket only. Polling uses a
// fasthttp.HostClient per connection (so every session has its own TCP connections, as a browser
// tab does, and may bind its own local address); WebSocket uses github.com/fasthttp/websocket.
//
// Engine.IO v3 sessions use the v3 payload framing (length prefixes counted in UTF-16 code units,
// "b4"+base64 binary records, XHR2 binary framing in responses) and send the heartbeat pings
// themselves; v4 sessions use 0x1e-separated payloads and answer the server's pings. On top,
// Socket.IO protocol 4 (socket.io 2.x: the server connects "/" implicitly) or 5 (the client sends
// CONNECT) is chosen from the Engine.IO revision. The wire codecs are package eioproto's.
//
// A Conn is safe for concurrent use. Errors carry a Kind so that a load generator can count them.
package eioclient
