package proxy

import "golang.org/x/sys/unix"

// deferAcceptSeconds is how long the kernel holds a connection that has sent nothing yet.
const deferAcceptSeconds = 1

// deferAccept makes a listening socket accept connections once their first bytes are there.
func deferAccept(fd int) error {
	return unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAcceptSeconds)
}
