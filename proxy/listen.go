package proxy

import (
	"bytes"
	"context"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener with SO_REUSEPORT (and SO_REUSEADDR) set, so that a new sioproxy
// process can bind the same address while the old one drains: restarts lose no connection attempt.
//
// Connections are accepted once their first bytes are there (TCP_DEFER_ACCEPT, as nginx's
// "deferred" and HAProxy's "defer-accept"): every client speaks first (an HTTP request, a TLS
// ClientHello, a PROXY header), so the accept order is the order requests arrived in and the first
// read finds its bytes instead of parking; a connection that stays silent is accepted after a
// second anyway. Accepted sockets get no TCP keep-alive probes (Go's default: after 15 s idle):
// a dead peer is found by Engine.IO's heartbeats (the backend ends the session, and its tunnel
// with it) and by the idle timeouts of connections and tunnels; that saves four setsockopt calls
// per connection.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1, Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
				return
			}
			serr = deferAccept(int(fd))
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(ctx, "tcp", addr)
}

// AcceptQueueMigrates reports whether Linux hands the connections queued on a closing SO_REUSEPORT
// listener to another listener of its group (net.ipv4.tcp_migrate_req, Linux 5.14+); known is false
// where that cannot be read. Without it, the connections accepted by the kernel but not yet by a
// process that stops beside its replacement are reset (their clients see a connection error).
func AcceptQueueMigrates() (migrates, known bool) {
	return sysctlOn("/proc/sys/net/ipv4/tcp_migrate_req")
}

// sysctlOn reads a boolean sysctl file: on unless "0"; known is false when it cannot be read.
func sysctlOn(path string) (on, known bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, false
	}
	return string(bytes.TrimSpace(b)) != "0", true
}
