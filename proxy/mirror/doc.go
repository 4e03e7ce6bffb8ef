// Package mirror copies sampled Engine.IO sessions to a shadow cluster and compares its answers with
// the primary's, without changing what the client sees (design.md invariant 6).
//
// A Mirror implements proxy.Mirror. For each sampled session it runs a shadow Engine.IO client
// (WebSocket transport) against a target placed by its own balancer: the shadow makes its own
// handshake, replays the client's packets in order (from polling POST bodies and from WebSocket
// frames, reassembled by a passive RFC 6455 parser from the bytes the proxy tees), answers the
// target's heartbeats itself, and never replays the client's pings, pongs or upgrade probes. What the
// target sends back is read and discarded, except that acks are matched by ack id with the
// primary's and server-to-client events are counted per name on both sides.
//
// The proxy's goroutines only parse and copy into a bounded per-session queue; everything else runs
// on the session's own goroutines. A full queue or a failed shadow drops and counts.
//
// The shadow speaks the target's protocol (Engine.IO 4 by default), so a socket.io 2 (Engine.IO 3,
// Socket.IO protocol 4) primary can be mirrored to a socket.io 4 target: framing is translated and
// the Socket.IO CONNECT to "/" that protocol 5 requires is sent by the shadow.
//
// The shadow client is not an eioclient.Conn, though both use eioproto's codecs: eioclient builds
// Socket.IO packets from Go values and numbers acks itself, while the shadow must send the client's
// packets as the client sent them, with the client's own ack ids, so that each of the shadow's acks
// can be matched with the primary's answer to the same emit; and it must never block or buffer
// without bound, which eioclient, made for load generation, does not promise.
package mirror
