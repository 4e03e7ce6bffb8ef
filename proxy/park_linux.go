package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// parkBufSize is the relay buffer of the poller (one, reused) and of a direction whose write would
// block (pooled, held only until that write completes).
const parkBufSize = 32 << 10

// parker relays idle-heavy WebSocket tunnels with no goroutine and no buffer per tunnel: both
// sockets of a tunnel sit in one epoll set (edge-triggered), and a single poller goroutine reads
// what becomes readable and writes it to the other side at once. Only a write that would block moves
// that direction to a goroutine with a pooled buffer until the bytes are out. Tunnels cost their
// two sockets, a few small structs and one timer (the idle timeout).
type parker struct {
	epfd       int
	wakeR      int // read end of the stop pipe, registered with id 0
	wakeW      int
	dirs       sync.Map // id -> *parkDir; read without a lock on every readiness event
	next       atomic.Uint64
	buf        []byte // the poller's own buffer
	pool       sync.Pool
	stopped    atomic.Bool
	loopExited chan struct{}
}

// parkDir is one direction of a parked tunnel: bytes from src go to dst.
type parkDir struct {
	id       uint64
	pt       *parkedTunnel
	src, dst *net.TCPConn
	srcRC    syscall.RawConn
	dstRC    syscall.RawConn
	// Scratch of the raw read and write callbacks, bound once so servicing allocates nothing.
	readFn, writeFn func(uintptr) bool
	addFn           func(uintptr)
	addErr          error
	// state makes servicing exclusive: dirIdle, dirBusy (one goroutine relays), or dirPending (an
	// edge came while busy: the relaying goroutine reads again before it lets go).
	state atomic.Int32
	// hup: the peer's FIN (or an error) was reported; the FIN may sit behind data a short read
	// returned, so short reads no longer mean drained.
	hup atomic.Bool
	io  []byte
	n   int
	err error
}

// epollET is EPOLLET as the uint32 of EpollEvent.Events (syscall declares it negative).
const epollET = 1 << 31

const (
	dirIdle int32 = iota
	dirBusy
	dirPending
)

// parkedTunnel is a tunnel relayed by the parker.
type parkedTunnel struct {
	t      *tunnel
	dirs   [2]parkDir
	active atomic.Int64 // unix nanos of the last relayed bytes
	idle   time.Duration
	timer  *time.Timer
	ended  atomic.Int32 // directions that reached EOF
	closed atomic.Bool
}

func newParker() (*parker, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, err
	}
	pk := &parker{epfd: epfd, wakeR: p[0], wakeW: p[1], buf: make([]byte, parkBufSize), loopExited: make(chan struct{})}
	pk.pool.New = func() any { b := make([]byte, parkBufSize); return &b }
	go pk.loop()
	return pk, nil
}

// stop ends the poller; parked tunnels are closed by the tunnel registry, not here.
func (pk *parker) stop() {
	if !pk.stopped.CompareAndSwap(false, true) {
		return
	}
	syscall.Write(pk.wakeW, []byte{1})
	<-pk.loopExited
	syscall.Close(pk.epfd)
	syscall.Close(pk.wakeR)
	syscall.Close(pk.wakeW)
}

func (pk *parker) loop() {
	defer close(pk.loopExited)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(pk.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for i := 0; i < n; i++ {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if id == 0 {
				return
			}
			if v, ok := pk.dirs.Load(id); ok {
				d := v.(*parkDir)
				if events[i].Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
					d.hup.Store(true)
				}
				pk.dispatch(d)
			}
		}
	}
}

// prepare builds the relay state of a tunnel without starting it. The caller sets t.onClose to
// call unpark (before the tunnel can be closed by anyone), then calls start.
func (pk *parker) prepare(t *tunnel, client, backend *net.TCPConn, idle time.Duration) (*parkedTunnel, error) {
	pt := &parkedTunnel{t: t, idle: idle}
	if idle > 0 {
		pt.timer = time.AfterFunc(time.Hour, pt.checkIdle)
		pt.timer.Stop()
	}
	ends := [2][2]*net.TCPConn{{client, backend}, {backend, client}}
	for i := range pt.dirs {
		d := &pt.dirs[i]
		d.pt, d.src, d.dst = pt, ends[i][0], ends[i][1]
		var err error
		if d.srcRC, err = d.src.SyscallConn(); err != nil {
			return nil, err
		}
		if d.dstRC, err = d.dst.SyscallConn(); err != nil {
			return nil, err
		}
		d.readFn, d.writeFn = d.rawRead, d.rawWrite
		d.addFn = pk.adder(d)
	}
	for i := range pt.dirs {
		pt.dirs[i].id = pk.next.Add(1) // from 1: id 0 is the stop pipe
		pk.dirs.Store(pt.dirs[i].id, &pt.dirs[i])
	}
	return pt, nil
}

// start arms the idle timer and registers both sockets; readiness from now on relays bytes.
func (pk *parker) start(pt *parkedTunnel) error {
	pt.active.Store(time.Now().UnixNano())
	if pt.timer != nil {
		pt.timer.Reset(pt.idle)
	}
	for i := range pt.dirs {
		pt.dirs[i].state.Store(dirBusy) // until registered: edges wait as dirPending
	}
	for i := range pt.dirs {
		if err := pt.dirs[i].register(); err != nil {
			return err
		}
	}
	for i := range pt.dirs {
		pk.release(&pt.dirs[i], pk.pooled())
	}
	return nil
}

// unpark forgets a closed tunnel (its sockets left the epoll set when they were closed).
func (pk *parker) unpark(pt *parkedTunnel) {
	pt.closed.Store(true)
	if pt.timer != nil {
		pt.timer.Stop()
	}
	pk.dirs.Delete(pt.dirs[0].id)
	pk.dirs.Delete(pt.dirs[1].id)
}

// checkIdle closes the tunnel when no bytes moved either way for idle, else waits the rest.
func (pt *parkedTunnel) checkIdle() {
	if pt.closed.Load() {
		return
	}
	rest := pt.idle - time.Since(time.Unix(0, pt.active.Load()))
	if rest <= 0 {
		pt.t.close()
		return
	}
	pt.timer.Reset(rest)
}

// adder binds the epoll registration of d, run while the socket is pinned (no fd reuse race).
func (pk *parker) adder(d *parkDir) func(uintptr) {
	return func(fd uintptr) {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET,
			Fd: int32(uint32(d.id)), Pad: int32(uint32(d.id >> 32))}
		d.addErr = syscall.EpollCtl(pk.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}
}

// register adds d's source socket to the epoll set; readiness already there is reported too.
func (d *parkDir) register() error {
	if err := d.srcRC.Control(d.addFn); err != nil {
		return err
	}
	return d.addErr
}

func (d *parkDir) rawRead(fd uintptr) bool {
	d.n, d.err = syscall.Read(int(fd), d.io)
	return true
}

func (d *parkDir) rawWrite(fd uintptr) bool {
	d.n, d.err = syscall.Write(int(fd), d.io)
	return true
}

// dispatch runs on the poller for every edge of d: it relays now unless another goroutine is.
func (pk *parker) dispatch(d *parkDir) {
	if d.state.CompareAndSwap(dirIdle, dirBusy) {
		pk.service(d, pk.buf)
		return
	}
	d.state.CompareAndSwap(dirBusy, dirPending)
}

// service relays what src holds, using buf, until src is drained; the caller holds d (dirBusy).
// A write that would block continues on a goroutine with a pooled buffer. With edge-triggered
// readiness a short read means drained: a later arrival is a new edge.
func (pk *parker) service(d *parkDir, buf []byte) {
	for {
		d.io = buf
		if err := d.srcRC.Read(d.readFn); err != nil {
			d.pt.t.close() // closed under us
			return
		}
		n, rerr := d.n, d.err
		if n > 0 {
			d.pt.active.Store(time.Now().UnixNano())
			d.io = buf[:n]
			if err := d.dstRC.Write(d.writeFn); err != nil {
				d.pt.t.close()
				return
			}
			w, werr := d.n, d.err
			if w < 0 {
				w = 0
			}
			if w < n && (werr == nil || errors.Is(werr, syscall.EAGAIN)) {
				bp := pk.pooled()
				k := copy(*bp, buf[w:n])
				go pk.finishWrite(d, bp, k)
				return
			}
			if werr != nil {
				d.pt.t.close()
				return
			}
			if n == len(buf) || d.hup.Load() {
				continue // maybe more, or the EOF behind the data
			}
		} else {
			switch {
			case errors.Is(rerr, syscall.EINTR):
				continue
			case !errors.Is(rerr, syscall.EAGAIN):
				// EOF or a read error: half-close towards dst; the tunnel ends when both sides did.
				// d stays busy: nothing more is read from src.
				d.dst.CloseWrite()
				if d.pt.ended.Add(1) == 2 {
					d.pt.t.close()
				}
				return
			}
		}
		if d.state.CompareAndSwap(dirBusy, dirIdle) {
			return
		}
		d.state.Store(dirBusy) // an edge came meanwhile: read again
	}
}

func (pk *parker) pooled() *[]byte { return pk.pool.Get().(*[]byte) }

// release lets go of d after registration (reading first if an edge came meanwhile).
func (pk *parker) release(d *parkDir, bp *[]byte) {
	defer pk.pool.Put(bp)
	if d.state.CompareAndSwap(dirBusy, dirIdle) {
		return
	}
	d.state.Store(dirBusy)
	pk.service(d, *bp)
}

// finishWrite completes a write that would have blocked, then goes on relaying on its own
// (pooled) buffer until the source is drained.
func (pk *parker) finishWrite(d *parkDir, bp *[]byte, k int) {
	defer pk.pool.Put(bp)
	if _, err := d.dst.Write((*bp)[:k]); err != nil {
		d.pt.t.close()
		return
	}
	pk.service(d, *bp)
}

// parker returns the proxy's poller, starting it on first use; nil when epoll is unavailable.
func (p *Proxy) parker() *parker {
	p.parkOnce.Do(func() {
		pk, err := newParker()
		if err != nil {
			p.log.Warn("tunnel parking unavailable, using a goroutine pair per tunnel", zap.Error(err))
			return
		}
		p.park = pk
	})
	return p.park
}

// stopParker ends the poller if it was started (Shutdown, after every tunnel was closed).
func (p *Proxy) stopParker() {
	p.parkOnce.Do(func() {})
	if p.park != nil {
		p.park.stop()
	}
}

// parkedDirs counts the directions the poller relays (two per parked tunnel).
func (p *Proxy) parkedDirs() int {
	pk := p.park
	if pk == nil {
		return 0
	}
	n := 0
	pk.dirs.Range(func(any, any) bool { n++; return true })
	return n
}
