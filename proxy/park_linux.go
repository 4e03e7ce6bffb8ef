package proxy

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// parkBufSize is the relay buffer of the poller (one, reused) and of a direction whose write would
// block (pooled, held only until that write completes).
const parkBufSize = 32 << 10

// parkChunk is the number of tunnel records per slab chunk.
const parkChunk = 256

// parkBudget bounds the full-buffer reads of one direction per turn, so that a busy tunnel does not
// hold up the others: a direction still readable after them is resumed after the batch (again).
const parkBudget = 16

// parkSweep is how often the poller looks for tunnels idle past their timeout (a tunnel is closed
// at most this long after its timeout).
const parkSweep = 2 * time.Second

// parker relays WebSocket tunnels over raw descriptors. At parking, the tunnel's two sockets are
// duplicated and Go's connections closed: Go forgets their poll descriptors, timers, buffers and
// addresses, and what is left of an idle tunnel is its two descriptors in one epoll set
// (edge-triggered) and one record of a few words in a slab, which is also the registry of parked
// tunnels. One poller goroutine relays whatever becomes readable to the other side at once with
// one buffer; a write that would block keeps its bytes in a pooled buffer until the socket is
// writable again (EPOLLOUT) and stops reading that direction meanwhile. The poller waits in Go's
// netpoller (its epoll set is a pollable descriptor), so no thread blocks in epoll_wait; one sweep
// every parkSweep closes idle tunnels instead of a timer per tunnel. Only the poller reads, writes
// and closes the descriptors: other goroutines ask it (closeAll, closeBackend) and wait.
type parker struct {
	epfd int
	evfd int // eventfd: wakes the poller for requests
	file *os.File
	rc   syscall.RawConn
	// ended runs on the poller once per closed tunnel, after its descriptors are closed.
	ended func(*tunnelEntry, *connHold)

	mu      sync.Mutex
	chunks  atomic.Pointer[[]*[parkChunk]parkRec] // grows under mu, copied on growth
	free    []uint32                              // slots to reuse
	live    atomic.Int64                          // parked tunnels
	reqs    []*parkReq
	closed  bool // closeAll ran: no new tunnels
	stopped bool // stop ran: no more requests

	// The poller's own state.
	events     []syscall.EpollEvent
	nev        int
	everr      error
	pollFn     func(uintptr) bool
	buf        []byte
	stalled    map[uint32]*stalledWrite // slot<<1 | direction
	nstalled   atomic.Int32             // len(stalled), for other goroutines
	released   []uint32                 // slots freed in this batch, reusable from the next one
	again      []parkTurn               // directions that used their budget and may hold more
	spare      []parkTurn
	pool       sync.Pool
	sweepEvery time.Duration
	drainQuiet int64 // see quietForDrain (nanoseconds; tests shorten them)
	drainWait  int64
	epoch      time.Time
	now        int64 // monotonic nanoseconds since epoch, at the current batch
	exited     chan struct{}
}

// parkRec is one parked tunnel. fd[0] is the client socket, fd[1] the backend's; direction 0
// relays client to backend (reads fd[0]), direction 1 backend to client.
type parkRec struct {
	fd   [2]int32 // -1: the slot is free
	gen  uint32   // generation of the slot (epoll events carry it)
	bits uint8    // the poller's per-direction flags (dirEnded, ...) << direction
	// failed: a registration failed; the next request closes the tunnel (written under mu).
	failed bool
	idle   int64 // nanoseconds; 0: no idle timeout
	last   int64 // monotonic nanoseconds of the last relayed bytes
	passed int64 // when a drain first passed the tunnel over as busy (0: never)
	entry  *tunnelEntry
	hold   *connHold
}

// Per-direction flags of parkRec.bits (shifted by the direction: bit<<dir).
const (
	dirEnded   = 1 << 0 // EOF or error read: half-closed towards the destination
	dirHup     = 1 << 2 // the source reported its FIN or an error: read until it says so
	dirStalled = 1 << 4 // a write to the destination would block: bytes wait in stalled
	dirMore    = 1 << 6 // the source may hold unread bytes (reading stopped while stalled)
)

// parkTurn is a direction to read again: key is slot<<1 | direction.
type parkTurn struct{ key, gen uint32 }

// stalledWrite is the unwritten rest of a direction's bytes: (*bp)[off:n].
type stalledWrite struct {
	bp     *[]byte
	off, n int
}

// writeAll writes b to a non-blocking socket until it is all written or the socket says why not
// (EAGAIN: its send buffer is full, and EPOLLOUT will tell when it has room).
func writeAll(fd int, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		w, err := syscall.Write(fd, b[done:])
		if w > 0 {
			done += w
			continue
		}
		if err == syscall.EINTR {
			continue
		}
		if err == nil {
			err = syscall.EAGAIN // a zero write: wait for room
		}
		return done, err
	}
	return done, nil
}

// parkReq is a request to the poller: close every tunnel (all), or up to limit tunnels of one
// backend (limit <= 0: all of them).
type parkReq struct {
	all     bool
	backend string
	limit   int
	n       int
	done    chan struct{}
}

// wakeSlot is the slot in the epoll data of the eventfd (no tunnel has it).
const wakeSlot = 1<<31 - 1

var wakeKey = uint32(wakeSlot << 1)

func newParker(ended func(*tunnelEntry, *connHold)) (*parker, error) {
	return newParkerEvery(ended, parkSweep)
}

// newParkerEvery is newParker with the idle sweep every sweep.
func newParkerEvery(ended func(*tunnelEntry, *connHold), sweep time.Duration) (*parker, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(wakeKey)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(evfd)
		return nil, err
	}
	// The epoll set itself waits in Go's netpoller: it is readable while events are ready.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		syscall.Close(evfd)
		return nil, err
	}
	file := os.NewFile(uintptr(epfd), "parker")
	rc, err := file.SyscallConn()
	if err == nil {
		err = file.SetReadDeadline(time.Time{}) // fails unless the netpoller has the epoll set
	}
	if err != nil {
		file.Close()
		syscall.Close(evfd)
		return nil, err
	}
	pk := &parker{epfd: epfd, evfd: evfd, file: file, rc: rc, ended: ended,
		events: make([]syscall.EpollEvent, 128), buf: make([]byte, parkBufSize),
		stalled: map[uint32]*stalledWrite{}, sweepEvery: sweep, epoch: time.Now(), exited: make(chan struct{}),
		drainQuiet: int64(drainQuiet), drainWait: int64(drainWait)}
	pk.pool.New = func() any { b := make([]byte, parkBufSize); return &b }
	pk.pollFn = pk.poll
	empty := []*[parkChunk]parkRec{}
	pk.chunks.Store(&empty)
	go pk.loop()
	return pk, nil
}

// rec returns the record of a slot (which exists: slots are never removed).
func (pk *parker) rec(slot uint32) *parkRec {
	return &(*pk.chunks.Load())[slot/parkChunk][slot%parkChunk]
}

// park relays the tunnel of two sockets (client, backend), taking their descriptors: they are
// closed when the tunnel ends, and then entry and hold are handed to ended. It fails (and closes
// nothing) once closeAll ran.
func (pk *parker) park(client, backend int, idle time.Duration, entry *tunnelEntry, hold *connHold) error {
	pk.mu.Lock()
	if pk.closed {
		pk.mu.Unlock()
		return errTunnelsClosed
	}
	var slot uint32
	if n := len(pk.free); n > 0 {
		slot = pk.free[n-1]
		pk.free = pk.free[:n-1]
	} else {
		chunks := *pk.chunks.Load()
		slot = uint32(len(chunks) * parkChunk)
		c := new([parkChunk]parkRec)
		for i := range c {
			c[i].fd = [2]int32{-1, -1}
		}
		grown := append(chunks[:len(chunks):len(chunks)], c)
		pk.chunks.Store(&grown)
		for i := parkChunk - 1; i > 0; i-- {
			pk.free = append(pk.free, slot+uint32(i))
		}
	}
	r := pk.rec(slot)
	r.fd = [2]int32{int32(client), int32(backend)}
	r.bits, r.idle, r.entry, r.hold = 0, int64(idle), entry, hold
	r.last, r.passed = int64(time.Since(pk.epoch)), 0
	pk.live.Add(1)
	// Both registrations happen under mu: the poller handles no event of a batch before it took mu
	// (loop), so it cannot close this tunnel, and its descriptors, between the two. Readiness
	// already there is reported at once (edge-triggered registration of a ready socket).
	failed := false
	for role, fd := range []int{client, backend} {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET,
			Fd: int32(slot<<1 | uint32(role)), Pad: int32(r.gen)}
		if syscall.EpollCtl(pk.epfd, syscall.EPOLL_CTL_ADD, fd, &ev) != nil {
			failed = true
			break
		}
	}
	r.failed = failed
	pk.mu.Unlock()
	if failed {
		// The poller closes the tunnel (and its descriptors) as it would any other.
		pk.request(&parkReq{})
	}
	return nil
}

var errTunnelsClosed = errors.New("tunnels closed (shutting down)")

// epollET is EPOLLET as the uint32 of EpollEvent.Events (syscall declares it negative).
const epollET = 1 << 31

// len is the number of parked tunnels.
func (pk *parker) len() int { return int(pk.live.Load()) }

// closeAll closes every parked tunnel, refuses new ones, and returns how many it closed.
func (pk *parker) closeAll() int {
	pk.mu.Lock()
	pk.closed = true
	pk.mu.Unlock()
	return pk.request(&parkReq{all: true})
}

// closeBackend closes up to limit parked tunnels of a backend (limit <= 0: all) and returns how many.
func (pk *parker) closeBackend(id string, limit int) int {
	return pk.request(&parkReq{backend: id, limit: limit})
}

// request hands r to the poller and waits until it ran; after stop it does nothing.
func (pk *parker) request(r *parkReq) int {
	r.done = make(chan struct{})
	pk.mu.Lock()
	if pk.stopped {
		pk.mu.Unlock()
		return 0
	}
	pk.reqs = append(pk.reqs, r)
	pk.wake()
	pk.mu.Unlock()
	select {
	case <-r.done:
	case <-pk.exited: // the poller failed
	}
	return r.n
}

// wake makes the poller run its requests. Under mu and before stop: stop closes the eventfd, whose
// number may then belong to another descriptor.
func (pk *parker) wake() {
	one := [8]byte{1}
	syscall.Write(pk.evfd, one[:])
}

// stop ends the poller, closing the tunnels still parked (normally closeAll did before), and then
// its epoll set and eventfd. Later calls wait for the first.
func (pk *parker) stop() {
	pk.mu.Lock()
	if pk.stopped {
		pk.mu.Unlock()
		<-pk.exited
		return
	}
	pk.closed, pk.stopped = true, true
	pk.reqs = append(pk.reqs, &parkReq{all: true, limit: -1, done: make(chan struct{})})
	pk.wake()
	pk.mu.Unlock()
	<-pk.exited
	pk.file.Close()
	syscall.Close(pk.evfd)
}

// poll collects ready events without waiting; false: none, wait for the epoll set's readiness.
func (pk *parker) poll(uintptr) bool {
	for {
		pk.nev, pk.everr = syscall.EpollWait(pk.epfd, pk.events, 0)
		if pk.everr != syscall.EINTR {
			return pk.nev > 0 || pk.everr != nil
		}
	}
}

func (pk *parker) loop() {
	defer close(pk.exited)
	nextSweep := time.Now().Add(pk.sweepEvery)
	pk.file.SetReadDeadline(nextSweep)
	for {
		var err error
		if len(pk.again) > 0 {
			pk.poll(0) // directions left readable by their budget go on: do not wait
		} else {
			err = pk.rc.Read(pk.pollFn)
		}
		now := time.Now()
		pk.now = int64(now.Sub(pk.epoch))
		pk.reuse()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			pk.nev = 0
		case err != nil || pk.everr != nil:
			return // the epoll set is gone
		}
		woken := false
		if pk.nev > 0 {
			pk.mu.Lock() // orders the records' set-up (park) before reading them
			pk.mu.Unlock()
		}
		for i := 0; i < pk.nev; i++ {
			ev := &pk.events[i]
			key := uint32(ev.Fd)
			if key>>1 == wakeSlot {
				var b [8]byte
				syscall.Read(pk.evfd, b[:])
				woken = true
				continue
			}
			pk.event(key>>1, int(key&1), uint32(ev.Pad), ev.Events)
		}
		if len(pk.again) > 0 {
			pk.resume()
		}
		if woken {
			if pk.requests() {
				return
			}
		}
		if now.After(nextSweep) {
			pk.sweep()
			nextSweep = time.Now().Add(pk.sweepEvery)
			pk.file.SetReadDeadline(nextSweep)
		}
	}
}

// resume reads on the directions that used their budget (those whose tunnel is still the one of
// their slot); those that use it again wait for the next turn.
func (pk *parker) resume() {
	turns := pk.again
	pk.again = pk.spare[:0]
	for _, t := range turns {
		slot := t.key >> 1
		if r := pk.rec(slot); r.gen == t.gen && r.fd[0] >= 0 {
			pk.relay(r, slot, int(t.key&1))
		}
	}
	pk.spare = turns[:0]
}

// reuse hands the slots freed in the last batch back to park (no event of theirs is left).
func (pk *parker) reuse() {
	if len(pk.released) == 0 {
		return
	}
	pk.mu.Lock()
	pk.free = append(pk.free, pk.released...)
	pk.mu.Unlock()
	pk.released = pk.released[:0]
}

// event handles readiness of one socket of a tunnel: role 0 the client's, 1 the backend's.
func (pk *parker) event(slot uint32, role int, gen uint32, events uint32) {
	r := pk.rec(slot)
	if r.gen != gen || r.fd[0] < 0 {
		return // the tunnel closed earlier in this batch
	}
	if events&syscall.EPOLLOUT != 0 && r.bits&(dirStalled<<(1-role)) != 0 {
		// The direction writing to this socket can go on.
		if !pk.flush(r, slot, 1-role) {
			return
		}
	}
	if events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		if events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
			r.bits |= dirHup << role
		}
		pk.relay(r, slot, role)
	}
}

// relay moves what the source of direction dir holds to its destination, until the source is
// drained (with edge-triggered readiness a short read means drained: a later arrival is a new
// edge), its write would block, or it ends.
func (pk *parker) relay(r *parkRec, slot uint32, dir int) {
	if r.bits&(dirEnded<<dir) != 0 {
		return
	}
	if r.bits&(dirStalled<<dir) != 0 {
		r.bits |= dirMore << dir // read once the stalled bytes are out
		return
	}
	src, dst := int(r.fd[dir]), int(r.fd[1-dir])
	buf := pk.buf
	reads := 0
	for {
		n, err := syscall.Read(src, buf)
		if n > 0 {
			r.last = pk.now
			w, werr := writeAll(dst, buf[:n])
			if w < n {
				if werr != syscall.EAGAIN {
					pk.close(r, slot)
					return
				}
				// The rest waits for EPOLLOUT (EAGAIN marked the socket as waiting for space).
				bp := pk.pool.Get().(*[]byte)
				k := copy(*bp, buf[w:n])
				pk.stalled[slot<<1|uint32(dir)] = &stalledWrite{bp: bp, n: k}
				pk.nstalled.Add(1)
				r.bits |= dirStalled<<dir | dirMore<<dir
				return
			}
			if n == len(buf) || r.bits&(dirHup<<dir) != 0 {
				// Maybe more, or the EOF behind the data: read on, or after the other ready tunnels.
				if reads++; reads >= parkBudget {
					pk.again = append(pk.again, parkTurn{key: slot<<1 | uint32(dir), gen: r.gen})
					return
				}
				continue
			}
			return
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return
		}
		// EOF or a read error: half-close towards dst; the tunnel ends when both sides did.
		r.bits |= dirEnded << dir
		if err != nil || r.bits&(dirEnded<<(1-dir)) != 0 || syscall.Shutdown(dst, syscall.SHUT_WR) != nil {
			pk.close(r, slot)
		}
		return
	}
}

// flush writes what direction dir could not write before; it reports false when the tunnel
// closed. Once the bytes are out, the direction reads again.
func (pk *parker) flush(r *parkRec, slot uint32, dir int) bool {
	key := slot<<1 | uint32(dir)
	sw := pk.stalled[key]
	w, err := writeAll(int(r.fd[1-dir]), (*sw.bp)[sw.off:sw.n])
	if w > 0 {
		sw.off += w
		r.last = pk.now
	}
	if sw.off < sw.n {
		if err == syscall.EAGAIN {
			return true // the next EPOLLOUT goes on
		}
		pk.close(r, slot)
		return false
	}
	delete(pk.stalled, key)
	pk.nstalled.Add(-1)
	pk.pool.Put(sw.bp)
	r.bits &^= dirStalled << dir
	if r.bits&(dirMore<<dir) != 0 {
		r.bits &^= dirMore << dir
		pk.relay(r, slot, dir)
	}
	return r.fd[0] >= 0
}

// close ends a tunnel on the poller: both descriptors are closed (which also removes them from
// the epoll set), the slot is freed for the next batch, and its bookkeeping runs once.
func (pk *parker) close(r *parkRec, slot uint32) {
	if r.fd[0] < 0 {
		return
	}
	for dir := 0; dir < 2; dir++ {
		if r.bits&(dirStalled<<dir) != 0 {
			key := slot<<1 | uint32(dir)
			pk.pool.Put(pk.stalled[key].bp)
			delete(pk.stalled, key)
			pk.nstalled.Add(-1)
		}
	}
	syscall.Close(int(r.fd[0]))
	syscall.Close(int(r.fd[1]))
	entry, hold := r.entry, r.hold
	pk.mu.Lock()
	r.fd = [2]int32{-1, -1}
	r.gen++
	r.entry, r.hold, r.bits, r.failed = nil, nil, 0, false
	pk.mu.Unlock()
	pk.released = append(pk.released, slot)
	pk.live.Add(-1)
	pk.ended(entry, hold)
}

// requests runs the requests of other goroutines; it reports true when the poller is to stop.
func (pk *parker) requests() bool {
	pk.mu.Lock()
	reqs := pk.reqs
	pk.reqs = nil
	pk.mu.Unlock()
	stop := false
	for _, q := range reqs {
		stop = stop || q.limit < 0
		q.n = pk.closeWhere(q)
		close(q.done)
	}
	return stop
}

// closeWhere closes the tunnels a request names, and those whose registration failed (not
// counted), and returns how many of the former it closed.
func (pk *parker) closeWhere(q *parkReq) int {
	var slots []uint32
	n := 0
	now := int64(time.Since(pk.epoch))
	pk.mu.Lock()
	for ci, c := range *pk.chunks.Load() {
		for i := range c {
			r := &c[i]
			if r.fd[0] < 0 {
				continue
			}
			named := q.all || (q.backend != "" && r.entry != nil && r.entry.backendID == q.backend &&
				(q.limit <= 0 || n < q.limit) && pk.quietForDrain(r, now))
			if named {
				n++
			}
			if named || r.failed {
				slots = append(slots, uint32(ci*parkChunk+i))
			}
		}
	}
	pk.mu.Unlock()
	for _, slot := range slots {
		pk.close(pk.rec(slot), slot)
	}
	return n
}

// A drain closes a parked tunnel once it has relayed nothing either way for drainQuiet, so that a
// reply on its way back (the ack of an emit just relayed) is not cut off with it; a tunnel that a
// drain passed over as busy is closed anyway once drainWait has passed since.
const (
	drainQuiet = 250 * time.Millisecond
	drainWait  = 2 * time.Second
)

// quietForDrain reports whether a drain may close r now (see drainQuiet); on the poller, under mu.
func (pk *parker) quietForDrain(r *parkRec, now int64) bool {
	if now-r.last >= pk.drainQuiet {
		return true
	}
	if r.passed == 0 {
		r.passed = now
		return false
	}
	return now-r.passed >= pk.drainWait
}

// sweep closes the tunnels that relayed nothing either way for their idle timeout.
func (pk *parker) sweep() {
	now := int64(time.Since(pk.epoch))
	var slots []uint32
	pk.mu.Lock()
	chunks := *pk.chunks.Load()
	for ci, c := range chunks {
		for i := range c {
			if r := &c[i]; r.fd[0] >= 0 && r.idle > 0 && now-r.last >= r.idle {
				slots = append(slots, uint32(ci*parkChunk+i))
			}
		}
	}
	pk.mu.Unlock()
	for _, slot := range slots {
		pk.close(pk.rec(slot), slot)
	}
}

// parker returns the proxy's poller, starting it on first use; nil when epoll is unavailable.
func (p *Proxy) parker() *parker {
	p.parkOnce.Do(func() {
		pk, err := newParker(p.parkedEnded)
		if err != nil {
			p.log.Warn("tunnel parking unavailable, using a goroutine pair per tunnel", zap.Error(err))
			return
		}
		p.park.Store(pk)
	})
	return p.park.Load()
}

// stopParker ends the poller if it was started (Shutdown, after every tunnel was closed).
func (p *Proxy) stopParker() {
	p.parkOnce.Do(func() {})
	if pk := p.park.Load(); pk != nil {
		pk.stop()
	}
}

// parkedDirs counts the directions the poller relays (two per parked tunnel).
func (p *Proxy) parkedDirs() int {
	pk := p.park.Load()
	if pk == nil {
		return 0
	}
	return 2 * pk.len()
}

// dupSocket duplicates the descriptor of a socket (close-on-exec, non-blocking as the original).
func dupSocket(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}
