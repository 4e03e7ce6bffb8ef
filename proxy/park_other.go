//go:build !linux

package proxy

import (
	"errors"
	"net"
	"time"
)

// parker is Linux only (epoll); elsewhere every tunnel uses a goroutine pair.
type parker struct{}

type parkedTunnel struct{}

func (p *Proxy) parker() *parker { return nil }

func (p *Proxy) stopParker() {}

func (pk *parker) prepare(*tunnel, *net.TCPConn, *net.TCPConn, time.Duration) (*parkedTunnel, error) {
	return nil, errors.New("tunnel parking is Linux only")
}

func (pk *parker) start(*parkedTunnel) error { return errors.New("tunnel parking is Linux only") }

func (pk *parker) unpark(*parkedTunnel) {}

func (p *Proxy) parkedDirs() int { return 0 }
