//go:build !linux

package proxy

import (
	"errors"
	"net"
	"time"
)

// parker is Linux only (epoll); elsewhere every tunnel uses a goroutine pair.
type parker struct{}

func (p *Proxy) parker() *parker { return nil }

func (p *Proxy) stopParker() {}

func (pk *parker) park(int, int, time.Duration, *tunnelEntry, *connHold) error {
	return errors.New("tunnel parking is Linux only")
}

func (pk *parker) len() int { return 0 }

func (pk *parker) closeAll() int { return 0 }

func (pk *parker) closeBackend(string, int) int { return 0 }

func (p *Proxy) parkedDirs() int { return 0 }

func dupSocket(*net.TCPConn) (int, error) { return -1, errors.New("tunnel parking is Linux only") }
