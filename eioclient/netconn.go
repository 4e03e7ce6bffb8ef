package eioclient

import (
	"context"
	"net"
	"sync"
)

// connSet tracks the TCP connections of one transport so that abort can close them all and make
// blocked requests return. After closeAll, new connections are refused.
type connSet struct {
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

// trackedConn removes itself from its set when closed.
type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

// Close closes the connection and forgets it.
func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.set.mu.Lock()
		delete(t.set.conns, t)
		t.set.mu.Unlock()
	})
	return t.Conn.Close()
}

// dial connects to addr from local (nil: any) and tracks the connection.
func (s *connSet) dial(ctx context.Context, local *net.TCPAddr, addr string) (net.Conn, error) {
	d := net.Dialer{}
	if local != nil {
		d.LocalAddr = local
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	t := &trackedConn{Conn: nc, set: s}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return nil, net.ErrClosed
	}
	if s.conns == nil {
		s.conns = make(map[*trackedConn]struct{})
	}
	s.conns[t] = struct{}{}
	s.mu.Unlock()
	return t, nil
}

// closeAll closes every tracked connection and refuses new ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for t := range conns {
		_ = t.Conn.Close()
	}
}
