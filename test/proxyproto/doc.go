// Package proxyproto tests the PROXY protocol on the client listener end to end: a real HAProxy in
// mode tcp with send-proxy and with send-proxy-v2 in front of sioproxy, real socket.io clients
// bound to other 127.0.0.x addresses behind it. The backends must see each client's own address
// (X-Forwarded-For, X-Real-IP), sessions work in every transport mode, the hash policy on the client
// IP places by the PROXY address, the per-IP limit counts it, and a PROXY header from a peer that
// is not trusted is refused.
package proxyproto
