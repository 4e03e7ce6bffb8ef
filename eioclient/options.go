package eioclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Mode is how a client reaches the server.
type Mode int

// Connection modes.
const (
	// Polling uses HTTP long-polling only.
	Polling Mode = iota
	// Upgrade starts on polling and upgrades to WebSocket (2probe, 3probe, pause polling, 5).
	Upgrade
	// WebSocket opens the session directly on a WebSocket.
	WebSocket
)

// String returns "polling", "upgrade" or "websocket".
func (m Mode) String() string {
	switch m {
	case Polling:
		return "polling"
	case Upgrade:
		return "upgrade"
	case WebSocket:
		return "websocket"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses the String form of a Mode.
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Polling, Upgrade, WebSocket} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("eioclient: unknown mode %q (want polling, upgrade or websocket)", s)
}

// DefaultPath is the Engine.IO path of a default Socket.IO server.
const DefaultPath = "/socket.io/"

// DefaultTimeout bounds Dial and each write when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Options configure Dial.
type Options struct {
	// URL is the server's base URL: http://, https://, ws:// or wss:// and host[:port]. A path in
	// it is ignored; see Path.
	URL string
	// Path is the Engine.IO path; default DefaultPath.
	Path string
	// EIO is the Engine.IO revision, 3 or 4 (default 4). It also picks the Socket.IO protocol:
	// 4 (socket.io 2.x) over EIO 3, 5 over EIO 4.
	EIO int
	// Mode is the transport strategy; default Polling.
	Mode Mode
	// Namespace is the Socket.IO namespace to connect; default "/".
	Namespace string
	// LocalAddr, when set, is the local address every TCP connection of this Conn binds
	// (port 0 picks an ephemeral port). Binding several loopback addresses lets a load generator
	// open more than 64k connections to one server.
	LocalAddr *net.TCPAddr
	// TLSConfig is used for https and wss URLs; nil uses the defaults.
	TLSConfig *tls.Config
	// Header is added to every HTTP request and to the WebSocket handshake.
	Header http.Header
	// Timeout bounds the whole of Dial and each POST or WebSocket write; default DefaultTimeout.
	Timeout time.Duration
	// OnEvent, when set, receives the server's events; see Conn.OnEvent.
	OnEvent func(*Event)
}

// endpoint is the parsed target of a Conn.
type endpoint struct {
	addr  string // host:port to dial
	host  string // Host header value
	tls   bool
	path  string
	query string // "EIO=4" etc., without transport and sid
}

// normalize fills defaults and validates o; it returns the parsed endpoint.
func (o *Options) normalize() (endpoint, error) {
	if o.EIO == 0 {
		o.EIO = 4
	}
	if o.EIO != 3 && o.EIO != 4 {
		return endpoint{}, fmt.Errorf("eioclient: EIO must be 3 or 4, got %d", o.EIO)
	}
	if o.Mode < Polling || o.Mode > WebSocket {
		return endpoint{}, fmt.Errorf("eioclient: invalid mode %d", int(o.Mode))
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if !strings.HasPrefix(o.Path, "/") {
		return endpoint{}, fmt.Errorf("eioclient: path %q must start with /", o.Path)
	}
	if o.Namespace == "" {
		o.Namespace = "/"
	}
	if !strings.HasPrefix(o.Namespace, "/") {
		return endpoint{}, fmt.Errorf("eioclient: namespace %q must start with /", o.Namespace)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.URL == "" {
		return endpoint{}, errors.New("eioclient: empty URL")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return endpoint{}, fmt.Errorf("eioclient: bad URL: %w", err)
	}
	ep := endpoint{host: u.Host, path: o.Path, query: fmt.Sprintf("EIO=%d", o.EIO)}
	port := "80"
	switch u.Scheme {
	case "http", "ws":
	case "https", "wss":
		ep.tls, port = true, "443"
	default:
		return endpoint{}, fmt.Errorf("eioclient: URL scheme %q (want http, https, ws or wss)", u.Scheme)
	}
	if u.Host == "" {
		return endpoint{}, fmt.Errorf("eioclient: URL %q has no host", o.URL)
	}
	ep.addr = u.Host
	if u.Port() == "" {
		ep.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return ep, nil
}

// pollURL returns the polling URL for sid ("" for the handshake) and cache-buster t.
func (e endpoint) pollURL(sid, t string) string {
	scheme := "http"
	if e.tls {
		scheme = "https"
	}
	u := scheme + "://" + e.host + e.path + "?" + e.query + "&transport=polling&t=" + t
	if sid != "" {
		u += "&sid=" + url.QueryEscape(sid)
	}
	return u
}

// wsURL returns the WebSocket URL for sid ("" for a WebSocket-only handshake).
func (e endpoint) wsURL(sid string) string {
	scheme := "ws"
	if e.tls {
		scheme = "wss"
	}
	u := scheme + "://" + e.host + e.path + "?" + e.query + "&transport=websocket"
	if sid != "" {
		u += "&sid=" + url.QueryEscape(sid)
	}
	return u
}
