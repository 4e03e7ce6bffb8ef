package eioserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Options configure a Server. The zero value is usable: every field has a default.
type Options struct {
	// Path is the Engine.IO path prefix. Default "/socket.io/".
	Path string
	// Name identifies this backend in built-in acks ("echo", "whoami") and logs.
	Name string
	// PingInterval is the heartbeat period sent in the handshake. Default 25s.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for a pong after a ping. Default 20s.
	PingTimeout time.Duration
	// UpgradeTimeout bounds the polling to WebSocket upgrade (probe to "5"). Default 10s.
	UpgradeTimeout time.Duration
	// MaxPayload is the largest accepted POST body or WebSocket message, in bytes. Default 1000000.
	MaxPayload int
	// Logger receives debug logs of session life cycles. Default: no logs.
	Logger *zap.Logger
	// Fallback serves requests outside Path. Default: 404.
	Fallback fasthttp.RequestHandler
	// OnConnect, if set, runs when a client connects to the Socket.IO namespace "/".
	OnConnect func(s *Socket)
	// OnDisconnect, if set, runs once when a connected Socket.IO socket goes away.
	OnDisconnect func(s *Socket, reason string)
}

// EventHandler handles one Socket.IO event. args are the event arguments after the name (binary
// arguments appear as {"_placeholder":true,"num":N}); ack sends the acknowledgement if the client
// asked for one and is a no-op otherwise. Handlers of one session run one at a time, on the
// goroutine that read the packet: they must not block.
type EventHandler func(s *Socket, args []json.RawMessage, ack func(args ...any))

// event is an incoming Socket.IO event as handlers see it internally.
type event struct {
	args  []json.RawMessage
	atts  [][]byte
	ackID int64 // -1 when the client asked no ack
}

type handlerFunc func(so *Socket, ev *event)

// Server is an Engine.IO v4 + Socket.IO v5 server. Create it with New and mount Handler on a
// fasthttp.Server. All methods are safe for concurrent use.
type Server struct {
	opts     Options
	log      *zap.Logger
	upgrader websocket.FastHTTPUpgrader

	mu       sync.RWMutex
	sessions map[string]*session
	handlers map[string]handlerFunc

	count  atomic.Int64
	closed atomic.Bool
	conns  sync.WaitGroup // hijacked WebSocket handlers

	// afterFunc schedules heartbeats; tests replace it with a manual clock.
	afterFunc func(d time.Duration, f func()) stopper
	// onClose, if set, observes session ends (tests).
	onClose func(sid, reason string)
	// onPollWait, if set, observes a GET starting to wait for packets (tests).
	onPollWait func(sid string)
	// newID generates session and socket ids; tests may replace it.
	newID func() string
}

// stopper is the part of *time.Timer the heartbeat needs.
type stopper interface{ Stop() bool }

func realAfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

// randomID returns 20 base64url characters from 15 random bytes, like engine.io's base64id.
func randomID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// New returns a Server with defaults applied and the built-in "echo" and "whoami" events.
func New(opts Options) *Server {
	if opts.Path == "" {
		opts.Path = "/socket.io/"
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 25 * time.Second
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 20 * time.Second
	}
	if opts.UpgradeTimeout <= 0 {
		opts.UpgradeTimeout = 10 * time.Second
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 1_000_000
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Fallback == nil {
		opts.Fallback = func(ctx *fasthttp.RequestCtx) { ctx.Error("Not Found", fasthttp.StatusNotFound) }
	}
	srv := &Server{
		opts:      opts,
		log:       opts.Logger.With(zap.String("backend", opts.Name)),
		sessions:  make(map[string]*session),
		handlers:  make(map[string]handlerFunc),
		afterFunc: realAfterFunc,
		newID:     randomID,
	}
	srv.upgrader = websocket.FastHTTPUpgrader{
		CheckOrigin: func(*fasthttp.RequestCtx) bool { return true },
	}
	srv.handlers["echo"] = srv.echo
	srv.handlers["whoami"] = srv.whoami
	return srv
}

// OnEvent registers fn for the Socket.IO event name, replacing any earlier handler (built-ins
// included). Register handlers before serving or at any time; it is safe either way.
func (srv *Server) OnEvent(name string, fn EventHandler) {
	srv.mu.Lock()
	srv.handlers[name] = func(so *Socket, ev *event) { fn(so, ev.args, so.ackFunc(ev.ackID)) }
	srv.mu.Unlock()
}

func (srv *Server) handler(name string) handlerFunc {
	srv.mu.RLock()
	h := srv.handlers[name]
	srv.mu.RUnlock()
	return h
}

// Name returns the backend name given in Options.
func (srv *Server) Name() string { return srv.opts.Name }

// Sessions returns the number of open Engine.IO sessions.
func (srv *Server) Sessions() int { return int(srv.count.Load()) }

// Broadcast emits event with args to every socket connected to "/" on this server. The packet is
// encoded once and shared by all sessions.
func (srv *Server) Broadcast(event string, args ...any) {
	frames, err := encodeEvent(event, args)
	if err != nil {
		srv.log.Warn("broadcast: cannot encode arguments", zap.String("event", event), zap.Error(err))
		return
	}
	srv.mu.RLock()
	for _, s := range srv.sessions {
		s.enqueueIfConnected(nil, frames)
	}
	srv.mu.RUnlock()
}

// Close closes every session (pending polls get a close packet, WebSockets a close frame), refuses
// new handshakes with 503, and waits for the WebSocket goroutines to end.
func (srv *Server) Close() {
	srv.closed.Store(true)
	srv.mu.RLock()
	all := make([]*session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.RUnlock()
	for _, s := range all {
		s.close("server shutting down")
	}
	srv.conns.Wait()
}

func (srv *Server) addSession(s *session) {
	srv.mu.Lock()
	srv.sessions[s.id] = s
	srv.mu.Unlock()
	srv.count.Add(1)
}

func (srv *Server) removeSession(s *session) {
	srv.mu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
		srv.count.Add(-1)
	}
	srv.mu.Unlock()
}

func (srv *Server) lookup(sid []byte) *session {
	srv.mu.RLock()
	s := srv.sessions[string(sid)]
	srv.mu.RUnlock()
	return s
}
