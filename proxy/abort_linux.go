package proxy

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"
)

// abortWatcher notices clients that go away while their request is pending at a backend (a
// long-poll), without a goroutine per request: the client's socket joins one epoll set
// (EPOLLRDHUP, edge-triggered) for the time of the exchange, and the watcher's single goroutine
// closes the backend connection of a client that closed or reset its own. The backend's request
// then ends at once, as behind nginx, and engine.io closes that transport instead of writing
// packets into a dead socket (invariant 10).
type abortWatcher struct {
	epfd         int
	wakeR, wakeW int
	conns        sync.Map // uint32 id -> *watchedConn; one entry per client connection that long-polled
	next         atomic.Uint32
	armed        atomic.Int64 // exchanges watched now
	stopped      atomic.Bool
	done         chan struct{}
}

// watchedConn is the watch state of one client connection, kept for its lifetime (its guard holds
// it). The socket joins the watcher's epoll set on the connection's first watched request and stays
// there: arming a request is one epoll_ctl (EPOLL_CTL_MOD, which also reports a hang-up that came
// before it), disarming costs none (an event of a disarmed request finds no target), and no
// allocation.
type watchedConn struct {
	w          *abortWatcher
	id         uint32
	rc         syscall.RawConn
	mu         sync.Mutex // orders an abort against disarm: after disarm, no abort touches the backend connection
	target     *bconn
	seq        uint32 // generation of the current arming (events of an earlier one are stale)
	registered bool   // the socket is in the watcher's epoll set
	armFn      func(fd uintptr)
	delFn      func(fd uintptr)
	ev         syscall.EpollEvent // scratch of armFn (a field: no allocation per request)
	op         int                // EPOLL_CTL_ADD or EPOLL_CTL_MOD, for armFn
	err        error
}

func newAbortWatcher() (*abortWatcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var pp [2]int
	if err := syscall.Pipe2(pp[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pp[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(pp[0])
		syscall.Close(pp[1])
		return nil, err
	}
	w := &abortWatcher{epfd: epfd, wakeR: pp[0], wakeW: pp[1], done: make(chan struct{})}
	w.next.Store(1) // id 0 is the stop pipe
	go w.loop()
	return w, nil
}

func (w *abortWatcher) loop() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for i := 0; i < n; i++ {
			id, seq := uint32(events[i].Fd), uint32(events[i].Pad)
			if id == 0 {
				return
			}
			if v, ok := w.conns.Load(id); ok {
				v.(*watchedConn).fire(seq)
			}
		}
	}
}

func (w *abortWatcher) stop() {
	if !w.stopped.CompareAndSwap(false, true) {
		return
	}
	syscall.Write(w.wakeW, []byte{1})
	<-w.done
	syscall.Close(w.epfd)
	syscall.Close(w.wakeR)
	syscall.Close(w.wakeW)
}

// watch returns the watch state of a client connection, made on its first watched request; nil
// when the connection has no socket to watch (or epoll is unavailable).
func (p *Proxy) watch(g *guardConn) *watchedConn {
	if w := g.watch.Load(); w != nil {
		return w
	}
	w := p.watcher()
	if w == nil {
		return nil
	}
	tc := socketOf(g)
	if tc == nil {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	wc := &watchedConn{w: w, rc: rc, id: w.next.Add(1)}
	if wc.id == 0 {
		wc.id = w.next.Add(1)
	}
	wc.armFn = wc.epollAdd
	wc.delFn = wc.epollDel
	w.conns.Store(wc.id, wc)
	g.watch.Store(wc)
	return wc
}

// watcher returns the proxy's abort watcher, starting it on first use.
func (p *Proxy) watcher() *abortWatcher {
	p.abortOnce.Do(func() {
		w, err := newAbortWatcher()
		if err != nil {
			p.log.Warn("client abort watch unavailable", zap.Error(err))
			return
		}
		p.aborts = w
	})
	return p.aborts
}

// stopWatcher ends the watcher if it was started (Shutdown).
func (p *Proxy) stopWatcher() {
	p.abortOnce.Do(func() {})
	if p.aborts != nil {
		p.aborts.stop()
	}
}

// abortWatches counts the exchanges being watched now.
func (p *Proxy) abortWatches() int {
	if p.aborts == nil {
		return 0
	}
	return int(p.aborts.armed.Load())
}

// watchedConns counts the client connections with a watch state (tests).
func (p *Proxy) watchedConns() int {
	if p.aborts == nil {
		return 0
	}
	n := 0
	p.aborts.conns.Range(func(any, any) bool { n++; return true })
	return n
}

// arm watches the client while bc carries its request.
func (wc *watchedConn) arm(bc *bconn) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	wc.target = bc
	wc.seq++
	wc.op = syscall.EPOLL_CTL_MOD
	if !wc.registered {
		wc.op = syscall.EPOLL_CTL_ADD
	}
	if wc.rc.Control(wc.armFn) == nil && wc.err == nil {
		wc.registered = true
		wc.w.armed.Add(1)
		return
	}
	wc.target = nil
}

// disarm ends the watch: once it returns, no abort reaches the connection armed last. The socket
// stays in the epoll set (an event now finds no target).
func (wc *watchedConn) disarm() {
	wc.mu.Lock()
	armed := wc.target != nil
	wc.target = nil
	wc.mu.Unlock()
	if armed {
		wc.w.armed.Add(-1)
	}
}

// fire handles an event of registration seq: the client closed or reset its connection.
func (wc *watchedConn) fire(seq uint32) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if seq != wc.seq || wc.target == nil {
		return
	}
	wc.target.abort()
	// Edge-triggered, the registration fires no more until it is armed again.
}

// release forgets the connection. A socket that lives on (hijacked for a tunnel, whose parker
// may hold a duplicate of its descriptor) leaves the epoll set; a closing one leaves it with its
// last descriptor.
func (wc *watchedConn) release(closing bool) {
	wc.disarm()
	wc.mu.Lock()
	if wc.registered && !closing {
		wc.rc.Control(wc.delFn)
	}
	wc.registered = false
	wc.mu.Unlock()
	wc.w.conns.Delete(wc.id)
}

func (wc *watchedConn) epollAdd(fd uintptr) {
	wc.ev = syscall.EpollEvent{Events: syscall.EPOLLRDHUP | epollET, Fd: int32(wc.id), Pad: int32(wc.seq)}
	wc.err = syscall.EpollCtl(wc.w.epfd, wc.op, int(fd), &wc.ev)
	switch {
	case wc.op == syscall.EPOLL_CTL_ADD && errors.Is(wc.err, syscall.EEXIST):
		wc.err = syscall.EpollCtl(wc.w.epfd, syscall.EPOLL_CTL_MOD, int(fd), &wc.ev)
	case wc.op == syscall.EPOLL_CTL_MOD && errors.Is(wc.err, syscall.ENOENT):
		wc.err = syscall.EpollCtl(wc.w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &wc.ev)
	}
}

func (wc *watchedConn) epollDel(fd uintptr) {
	syscall.EpollCtl(wc.w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
}
