// Package eioproto holds the Engine.IO and Socket.IO wire formats: packets, v3/v4 polling payload
// framing, WebSocket frames as Engine.IO packets, and Socket.IO packets. It only encodes and
// decodes; sessions, transports and policy (limits, what a malformed packet means) belong to its
// callers: the eioclient client, the eioserver test backend and the proxy's mirror.
package eioproto
