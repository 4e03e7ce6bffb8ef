// Package demo runs the in-process backends of `sioproxy demo`: n eioserver instances on
// 127.0.0.1 random ports, joined by an in-process bus so that a chat message sent to any backend
// reaches every socket of every backend (as a Socket.IO adapter would), each serving the demo
// page at "/" with its small hand-written Engine.IO/Socket.IO client at "/demo.js".
package demo

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"sioproxy/eioserver"
)

//go:embed web/index.html web/demo.js
var web embed.FS

// maxChatLen bounds a chat message, in bytes.
const maxChatLen = 500

// ChatMessage is what the "chat" event carries to every socket.
type ChatMessage struct {
	Backend string `json:"backend"` // the backend that received the message
	From    string `json:"from"`    // the sender's Socket.IO id
	Text    string `json:"text"`
	At      int64  `json:"at"` // unix milliseconds
}

// bus fans chat messages out to every backend, like a Socket.IO adapter.
type bus struct {
	mu      sync.RWMutex
	servers []*eioserver.Server
}

func (b *bus) join(s *eioserver.Server) {
	b.mu.Lock()
	b.servers = append(b.servers, s)
	b.mu.Unlock()
}

func (b *bus) publish(m ChatMessage) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.servers {
		s.Broadcast("chat", m)
	}
}

// Start runs n backends named "backend-1".."backend-n" and returns their base URLs
// ("http://127.0.0.1:port"). stop (idempotent) shuts them down; so does cancelling ctx.
func Start(ctx context.Context, n int, log *zap.Logger) (urls []string, stop func(), err error) {
	if n < 1 {
		return nil, nil, errors.New("demo: need at least one backend")
	}
	if log == nil {
		log = zap.NewNop()
	}
	page, err := web.ReadFile("web/index.html")
	if err != nil {
		return nil, nil, err
	}
	script, err := web.ReadFile("web/demo.js")
	if err != nil {
		return nil, nil, err
	}
	b := &bus{}
	var listeners []*eioserver.Listener
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, l := range listeners {
				l.Close()
			}
		})
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("backend-%d", i)
		eio := eioserver.New(eioserver.Options{
			Name:     name,
			Logger:   log,
			Fallback: pages(page, script),
		})
		eio.OnEvent("chat", chatHandler(name, b, time.Now))
		b.join(eio)
		l, err := eio.Listen("127.0.0.1:0", "sioproxy-demo")
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("demo: %s: %w", name, err)
		}
		listeners = append(listeners, l)
		urls = append(urls, l.URL)
		log.Info("demo backend listening", zap.String("backend", name), zap.String("url", l.URL))
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return urls, stop, nil
}

// chatHandler validates a chat text and publishes it on the bus.
func chatHandler(name string, b *bus, now func() time.Time) eioserver.EventHandler {
	return func(s *eioserver.Socket, args []json.RawMessage, ack func(...any)) {
		var text string
		if len(args) == 0 || json.Unmarshal(args[0], &text) != nil {
			ack(map[string]string{"error": "chat takes one string"})
			return
		}
		text = strings.TrimSpace(text)
		if text == "" || len(text) > maxChatLen || !utf8.ValidString(text) {
			ack(map[string]string{"error": fmt.Sprintf("message must be 1 to %d bytes of text", maxChatLen)})
			return
		}
		b.publish(ChatMessage{Backend: name, From: s.ID(), Text: text, At: now().UnixMilli()})
		ack(map[string]string{"backend": name})
	}
}

// pages serves the demo page and its script; anything else is 404.
func pages(page, script []byte) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/", "/index.html":
			ctx.SetContentType("text/html; charset=utf-8")
			ctx.SetBody(page)
		case "/demo.js":
			ctx.SetContentType("text/javascript; charset=utf-8")
			ctx.SetBody(script)
		default:
			ctx.Error("Not Found", fasthttp.StatusNotFound)
			return
		}
		ctx.Response.Header.Set("Cache-Control", "no-cache")
	}
}
