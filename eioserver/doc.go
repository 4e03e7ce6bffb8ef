// Package eioserver is a small, efficient Engine.IO v4 + Socket.IO v5 server on fasthttp.
//
// It serves long-polling (GET/POST), the WebSocket transport (direct and upgraded from polling
// with the 2probe/3probe/5 exchange), server heartbeats (v4: the server pings, the client pongs),
// and the Socket.IO v5 layer on the main namespace "/": CONNECT, EVENT and ACK with ack ids,
// binary events and acks with attachments, DISCONNECT.
//
// It is the backend of `sioproxy demo` and a fast backend for benchmarks: one goroutine per
// WebSocket connection for reads (the hijacked handler) and one for writes, none per packet;
// heartbeats run on timers; broadcast packets are encoded once and shared by every session. The
// wire codecs are package eioproto's.
package eioserver
