package mirror

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/eioproto"
	"sioproxy/proxy"
)

// Bounds of one session's ack bookkeeping.
const (
	maxPendingAcks = 1024
	ackTimeout     = 30 * time.Second
	maxAttachments = 1 << 16 // a packet announcing more is not followed (treated as malformed)
)

// item is one queued packet of the primary session, copied off the proxy's buffers.
type item struct {
	server bool  // from the primary server (for comparison), else from the client (to replay)
	at     int64 // unix nanos when the proxy saw it
	pkt    eioproto.Packet
}

type ackKey struct {
	nsp string
	id  int64
}

// ackEntry pairs the primary's and the shadow's answers to one acked client emit.
type ackEntry struct {
	event            string
	clientAt, sentAt int64 // the proxy saw the emit; the shadow was sent it (0: never)
	primaryAt        int64
	shadowAt         int64
	primary, shadow  []byte
	hasP, hasS       bool
}

// binState follows the binary attachments that trail a BINARY_EVENT or BINARY_ACK.
type binState struct {
	need int      // attachments still to come
	ack  bool     // collecting an ack (else skipping an event's attachments)
	key  ackKey   // of the ack
	data []byte   // the ack's JSON (copied)
	atts [][]byte // attachments so far
}

// session mirrors one primary Engine.IO session.
type session struct {
	m      *Mirror
	sid    string
	eio    int // the primary's Engine.IO revision
	path   string
	query  string // the client's query without Engine.IO parameters
	header http.Header

	queue     chan item
	closing   chan struct{}
	closeOnce sync.Once
	upgraded  atomic.Bool // an upgrade to WebSocket completed (a tunnel carries the session)
	failed    atomic.Bool // the shadow is gone: the primary's traffic is no longer looked at

	// Owned by the run goroutine.
	shadow        *shadowConn
	rootConnected bool
	primaryBin    binState

	connAck chan string // namespaces the target answered a CONNECT for (or refused)

	mu       sync.Mutex
	acks     map[ackKey]*ackEntry
	awaiting int           // acks sent to the shadow and not answered yet
	wake     chan struct{} // 1-slot: awaiting reached 0 or the shadow ended
	dead     bool          // the shadow failed or closed: no more shadow acks
}

// forwardedHeaders are the client's handshake headers the shadow handshake carries too.
var forwardedHeaders = []string{"Origin", "Cookie", "Authorization", "User-Agent", "X-Forwarded-For"}

func (m *Mirror) newSession(sid string, req *fasthttp.Request) *session {
	uri := req.Header.RequestURI()
	path, query := uri, []byte(nil)
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		path, query = uri[:i], uri[i+1:]
	}
	eio, app := parseQuery(query)
	s := &session{
		m:       m,
		sid:     sid,
		eio:     eio,
		path:    string(path),
		query:   app,
		header:  http.Header{},
		queue:   make(chan item, m.queue),
		closing: make(chan struct{}),
		acks:    make(map[ackKey]*ackEntry),
		wake:    make(chan struct{}, 1),
		connAck: make(chan string, 8),
	}
	for _, h := range forwardedHeaders {
		if v := req.Header.Peek(h); len(v) > 0 {
			s.header.Set(h, string(v))
		}
	}
	return s
}

// parseQuery reads the client's handshake query: the Engine.IO revision (3 for EIO=3, else 4, as
// the proxy only lets through what the backend accepted) and the application's parameters (tokens
// and the like, each followed by '&'), without Engine.IO's.
func parseQuery(q []byte) (eio int, app string) {
	eio = 4
	var out []byte
	for len(q) > 0 {
		var kv []byte
		if j := bytes.IndexByte(q, '&'); j >= 0 {
			kv, q = q[:j], q[j+1:]
		} else {
			kv, q = q, nil
		}
		if bytes.Equal(kv, []byte("EIO=3")) {
			eio = 3
		}
		k := kv
		if j := bytes.IndexByte(kv, '='); j >= 0 {
			k = kv[:j]
		}
		switch string(k) {
		case "EIO", "transport", "sid", "t", "b64", "j", "":
			continue
		}
		out = append(out, kv...)
		out = append(out, '&')
	}
	return eio, string(out)
}

func (s *session) start() {
	s.m.sessionStarted()
	go s.run()
}

// close asks the session to finish: replay what is queued, wait for the shadow's acks, close.
func (s *session) close() { s.closeOnce.Do(func() { close(s.closing) }) }

func (s *session) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// payload queues the packets of a polling body: a POST body from the client (server false) or a
// poll response from the primary (server true). A malformed packet counts as a decode error; the
// packets before it are queued.
func (s *session) payload(server bool, body []byte) {
	at := s.m.now().UnixNano()
	var buf [8]eioproto.Packet
	pkts, err := decodePayload(buf[:0], s.eio, body)
	if err != nil {
		s.m.stats.decodeErrors.Add(1)
	}
	for _, p := range pkts {
		s.packet(server, p, at)
	}
}

// packet queues one packet the proxy saw: from the primary server for comparison, else from the
// client for replay.
func (s *session) packet(server bool, p eioproto.Packet, at int64) {
	if server {
		s.server(p, at)
	} else {
		s.client(p, at)
	}
}

// client queues one client packet for replay. Heartbeats, probes and upgrade packets are skipped.
func (s *session) client(p eioproto.Packet, at int64) {
	switch p.Type {
	case eioproto.PacketMessage:
	case eioproto.PacketUpgrade:
		s.upgraded.Store(true)
		s.m.stats.packetsSkipped.Add(1)
		return
	default:
		s.m.stats.packetsSkipped.Add(1)
		return
	}
	s.enqueue(item{at: at, pkt: clonePacket(p)})
}

// server queues one primary server packet when it matters for the comparison.
func (s *session) server(p eioproto.Packet, at int64) {
	if p.Type != eioproto.PacketMessage {
		return
	}
	if !p.Binary {
		if len(p.Data) == 0 {
			return
		}
		switch p.Data[0] - '0' {
		case eioproto.SIOEvent, eioproto.SIOAck, eioproto.SIOBinaryEvent, eioproto.SIOBinaryAck:
		default:
			return
		}
	}
	s.enqueue(item{server: true, at: at, pkt: clonePacket(p)})
}

// clonePacket copies p off the proxy's buffers.
func clonePacket(p eioproto.Packet) eioproto.Packet {
	return eioproto.Packet{Type: p.Type, Binary: p.Binary, Data: bytes.Clone(p.Data)}
}

func (s *session) enqueue(it item) {
	if s.isClosing() {
		return
	}
	select {
	case s.queue <- it:
	default:
		s.m.stats.packetsDropped.Add(1)
	}
}

// run is the session's goroutine: connect the shadow, then replay and compare until closed.
func (s *session) run() {
	defer s.m.sessionEnded()
	sh, err := s.m.dialShadow(s)
	if err != nil {
		s.m.stats.shadowFailures.Add(1)
		s.m.log.Debug("shadow connect failed", zap.String("sid_hash", proxy.SIDHash(s.sid)), zap.Error(err))
		s.markDead()
	} else {
		s.shadow = sh
		go sh.readLoop()
		if s.eio == 3 && sh.eio == 4 {
			// Socket.IO protocol 4 connects "/" implicitly; protocol 5 needs the client's CONNECT.
			s.write(eioproto.Packet{Type: eioproto.PacketMessage, Data: []byte("0")})
			s.rootConnected = true
			s.awaitConnect("/")
		}
	}
	for done := false; !done; {
		select {
		case it := <-s.queue:
			s.process(it)
		case <-s.closing:
			done = true
		}
	}
	for drained := false; !drained; {
		select {
		case it := <-s.queue:
			s.process(it)
		default:
			drained = true
		}
	}
	s.awaitShadow()
	if s.shadow != nil {
		s.shadow.close()
	}
	s.finish()
}

// awaitShadow waits, up to the close grace, for the shadow's outstanding acks.
func (s *session) awaitShadow() {
	timer := time.NewTimer(s.m.closeGrace)
	defer timer.Stop()
	for {
		s.mu.Lock()
		waiting := s.awaiting > 0 && !s.dead
		s.mu.Unlock()
		if !waiting {
			return
		}
		select {
		case <-s.wake:
		case <-timer.C:
			return
		}
	}
}

func (s *session) process(it item) {
	if it.server {
		s.primaryPacket(it)
		return
	}
	p := it.pkt
	if !p.Binary {
		sp, err := eioproto.DecodeSocketIO(p.Data)
		if err == nil {
			switch sp.Type {
			case eioproto.SIOConnect:
				var ok bool
				if p, ok = s.translateConnect(p, sp); !ok {
					return
				}
				s.write(p)
				s.awaitConnect(sp.Nsp)
				return
			case eioproto.SIOEvent, eioproto.SIOBinaryEvent:
				if sp.ID != eioproto.NoAck {
					s.expectAck(sp, it.at)
				}
			case eioproto.SIODisconnect:
				// The client left after its acks arrived from the primary; let the shadow answer
				// too, or the target drops the events still in flight (they come after the leave).
				s.awaitShadow()
			}
		}
	}
	s.write(p)
}

// awaitConnect waits until the target answered the CONNECT of nsp, as a real client does: a
// Socket.IO 4 server closes a connection that sends packets to a namespace it is still connecting.
func (s *session) awaitConnect(nsp string) {
	if s.shadow == nil || s.shadow.failed.Load() {
		return
	}
	timer := time.NewTimer(s.m.dialTimeout)
	defer timer.Stop()
	for {
		select {
		case got := <-s.connAck:
			if got == nsp {
				return
			}
		case <-s.shadow.done:
			return
		case <-timer.C:
			return
		}
	}
}

// translateConnect adapts a client CONNECT to the target's Socket.IO protocol; ok false drops it.
func (s *session) translateConnect(p eioproto.Packet, sp eioproto.SocketIOPacket) (eioproto.Packet, bool) {
	root := sp.Nsp == "/"
	if s.shadow != nil && s.shadow.eio == 3 && s.eio == 4 {
		// Protocol 4 target: "/" is connected by the server; no auth payload.
		if root {
			return p, false
		}
		return eioproto.Packet{Type: eioproto.PacketMessage, Data: append(append([]byte("0"), sp.Nsp...), ',')}, true
	}
	if root && s.rootConnected {
		return p, false
	}
	if root {
		s.rootConnected = true
	}
	return p, true
}

// write replays one packet to the shadow; a failed or missing shadow drops and counts.
func (s *session) write(p eioproto.Packet) {
	if s.shadow == nil || s.shadow.failed.Load() {
		s.m.stats.packetsDropped.Add(1)
		return
	}
	if err := s.shadow.write(p); err != nil {
		s.m.stats.packetsDropped.Add(1)
		return
	}
	s.m.stats.packetsReplayed.Add(1)
}

// expectAck records a client emit that asks for an ack.
func (s *session) expectAck(sp eioproto.SocketIOPacket, at int64) {
	name, ok := EventName(sp.Data)
	if !ok {
		name = unknownEvent
	}
	key := ackKey{sp.Nsp, sp.ID}
	live := s.shadow != nil && !s.shadow.failed.Load()
	var done []settled
	s.mu.Lock()
	e := s.entryLocked(key, &done)
	e.event, e.clientAt = name, at
	if live && !e.hasS {
		e.sentAt = s.m.now().UnixNano()
		s.awaiting++
	}
	done = append(done, s.settleLocked(key, e)...)
	s.mu.Unlock()
	s.record(done)
}

func (s *session) entryLocked(key ackKey, done *[]settled) *ackEntry {
	e := s.acks[key]
	if e == nil {
		if len(s.acks) >= maxPendingAcks {
			*done = append(*done, s.expireLocked()...)
		}
		e = &ackEntry{}
		s.acks[key] = e
	}
	return e
}

// expireLocked settles entries older than ackTimeout (or, if none, all of them) as missing.
func (s *session) expireLocked() []settled {
	cutoff := s.m.now().Add(-ackTimeout).UnixNano()
	var out []settled
	for k, e := range s.acks {
		if max(e.clientAt, e.primaryAt, e.shadowAt) < cutoff {
			out = append(out, s.missingLocked(k, e))
		}
	}
	for k, e := range s.acks {
		if len(s.acks) < maxPendingAcks {
			break
		}
		out = append(out, s.missingLocked(k, e))
	}
	return out
}

// settled is a finished comparison, recorded outside the session lock.
type settled struct {
	event           string
	result          int
	pLat, sLat      time.Duration
	primary, shadow []byte
}

// settleLocked finishes the entry when both answers are in, or the primary's is and the shadow is
// dead.
func (s *session) settleLocked(key ackKey, e *ackEntry) []settled {
	if !e.hasP || (!e.hasS && !s.dead) {
		return nil
	}
	if !e.hasS {
		return []settled{s.missingLocked(key, e)}
	}
	delete(s.acks, key)
	res := ackDifferent
	if sameAck(e.primary, e.shadow) {
		res = ackSame
	}
	return []settled{{event: e.event, result: res, pLat: lat(e.clientAt, e.primaryAt), sLat: lat(e.sentAt, e.shadowAt), primary: e.primary, shadow: e.shadow}}
}

func (s *session) missingLocked(key ackKey, e *ackEntry) settled {
	delete(s.acks, key)
	if e.sentAt != 0 && !e.hasS {
		s.awaiting--
	}
	res := ackMissingShadow
	if !e.hasP {
		res = ackMissingPrimary
	}
	return settled{event: e.event, result: res, pLat: lat(e.clientAt, e.primaryAt), primary: e.primary, shadow: e.shadow}
}

func lat(from, to int64) time.Duration {
	if from == 0 || to == 0 || to < from {
		return 0
	}
	return time.Duration(to - from)
}

func (s *session) record(done []settled) {
	for _, d := range done {
		name := d.event
		if name == "" {
			name = unknownEvent
		}
		s.m.stats.ackResult(name, d.result, d.pLat, d.sLat, s.sid, d.primary, d.shadow)
	}
}

// primaryPacket handles an ack or event from the primary server.
func (s *session) primaryPacket(it item) {
	if ack, key, payload := s.primaryBin.feed(it.pkt); ack {
		s.answer(sidePrimary, key, payload, it.at)
	} else if name, ok := eventOf(it.pkt); ok {
		s.m.stats.event(sidePrimary, name)
	}
}

// answer records one side's ack.
func (s *session) answer(side int, key ackKey, payload []byte, at int64) {
	var done []settled
	s.mu.Lock()
	e := s.entryLocked(key, &done)
	if side == sidePrimary {
		e.primary, e.primaryAt, e.hasP = payload, at, true
	} else if !e.hasS {
		e.shadow, e.shadowAt, e.hasS = payload, at, true
		if e.sentAt != 0 {
			s.awaiting--
			if s.awaiting == 0 {
				s.poke()
			}
		}
	}
	done = append(done, s.settleLocked(key, e)...)
	s.mu.Unlock()
	s.record(done)
}

func (s *session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// markDead notes that no more shadow acks will come and settles what waited for them.
func (s *session) markDead() {
	s.failed.Store(true)
	s.mu.Lock()
	s.dead = true
	var done []settled
	for k, e := range s.acks {
		done = append(done, s.settleLocked(k, e)...)
	}
	s.mu.Unlock()
	s.poke()
	s.record(done)
}

// finish settles every open comparison of an ended session.
func (s *session) finish() {
	s.mu.Lock()
	var done []settled
	for k, e := range s.acks {
		if e.hasP || e.hasS {
			done = append(done, s.missingLocked(k, e))
		}
	}
	s.acks = nil
	s.mu.Unlock()
	s.record(done)
}

// feed follows a packet stream for binary attachments. It returns ack true with the complete payload
// when p completes an ack (text or binary).
func (b *binState) feed(p eioproto.Packet) (ack bool, key ackKey, payload []byte) {
	if p.Binary {
		if b.need == 0 {
			return false, ackKey{}, nil
		}
		b.need--
		if b.ack {
			b.atts = append(b.atts, p.Data)
			if b.need == 0 {
				b.ack = false
				return true, b.key, binaryPayload(b.data, b.atts)
			}
		}
		return false, ackKey{}, nil
	}
	b.need, b.ack = 0, false
	sp, err := eioproto.DecodeSocketIO(p.Data)
	if err != nil || sp.Attachments > maxAttachments {
		return false, ackKey{}, nil
	}
	switch sp.Type {
	case eioproto.SIOAck:
		if sp.ID != eioproto.NoAck {
			return true, ackKey{sp.Nsp, sp.ID}, sp.Data
		}
	case eioproto.SIOBinaryAck:
		if sp.ID != eioproto.NoAck {
			if sp.Attachments == 0 {
				return true, ackKey{sp.Nsp, sp.ID}, sp.Data
			}
			b.need, b.ack, b.key, b.data, b.atts = sp.Attachments, true, ackKey{sp.Nsp, sp.ID}, sp.Data, nil
		}
	case eioproto.SIOBinaryEvent:
		b.need = sp.Attachments
	}
	return false, ackKey{}, nil
}

// eventOf returns the name of a server-to-client EVENT or BINARY_EVENT.
func eventOf(p eioproto.Packet) (string, bool) {
	if p.Binary || len(p.Data) == 0 || (p.Data[0] != '2' && p.Data[0] != '5') {
		return "", false
	}
	sp, err := eioproto.DecodeSocketIO(p.Data)
	if err != nil {
		return "", false
	}
	return EventName(sp.Data)
}

// binaryPayload renders an ack with attachments for comparison: the JSON, then per attachment its
// length and a digest.
func binaryPayload(data []byte, atts [][]byte) []byte {
	out := append([]byte(nil), data...)
	for _, a := range atts {
		sum := sha256.Sum256(a)
		out = fmt.Appendf(out, " <binary %d bytes sha256:%x>", len(a), sum[:8])
	}
	return out
}
