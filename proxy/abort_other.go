//go:build !linux

package proxy

// The client-abort watch is Linux only (epoll); elsewhere a pending request ends when the backend
// answers or times out.

type abortWatcher struct{}

type watchedConn struct{}

func (p *Proxy) watch(*guardConn) *watchedConn { return nil }

func (p *Proxy) stopWatcher() {}

func (p *Proxy) abortWatches() int { return 0 }

func (p *Proxy) watchedConns() int { return 0 }

func (wc *watchedConn) arm(*bconn) {}

func (wc *watchedConn) disarm() {}

func (wc *watchedConn) release(bool) {}
