//go:build !linux

package proxy

// deferAccept is Linux only (TCP_DEFER_ACCEPT); elsewhere connections are accepted at once.
func deferAccept(int) error { return nil }
