// Package eiotest is a small Engine.IO v4 + Socket.IO v5 client for tests: polling, polling then
// upgrade to WebSocket, or WebSocket only; emit with ack, binary attachments, server heartbeats.
// It is written independently of the eioserver codec so that each checks the other.
package eiotest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fasthttp/websocket"
)

// Mode selects the transports a Client uses.
type Mode int

const (
	// Polling uses HTTP long-polling only.
	Polling Mode = iota
	// Upgrade starts on polling and upgrades to WebSocket (2probe, 3probe, 5).
	Upgrade
	// WebSocket connects with the WebSocket transport directly.
	WebSocket
)

// String returns the mode name.
func (m Mode) String() string { return [...]string{"polling", "upgrade", "websocket"}[m] }

// Event is a Socket.IO event received from the server.
type Event struct {
	Name        string
	Args        []json.RawMessage
	Attachments [][]byte
}

// Ack is the reply to an EmitAck.
type Ack struct {
	Args        []json.RawMessage
	Attachments [][]byte
}

// Client is one Engine.IO session with one Socket.IO connection to "/".
type Client struct {
	// SID is the Engine.IO session id from the open packet.
	SID string
	// Open is the raw JSON of the open packet.
	Open json.RawMessage
	// Events receives server events (buffered; extra events are dropped when it is full).
	Events chan Event
	// Closed is closed when the session ends.
	Closed chan struct{}

	base      string // http(s)://host/path/?EIO=4
	http      *http.Client
	transport atomic.Value // "polling" | "websocket"

	wsMu sync.Mutex // serialises WebSocket writes
	ws   *websocket.Conn

	postMu   sync.Mutex // one POST at a time
	pollStop chan struct{}
	pollDone chan struct{}

	mu      sync.Mutex
	nextID  int64
	acks    map[int64]chan Ack
	pending *pendingBinary
	connect chan string
	once    sync.Once
	err     error
}

type pendingBinary struct {
	header []byte // Socket.IO packet without its "N-" prefix
	n      int
	atts   [][]byte
}

// Dial opens a session at base (for example "http://127.0.0.1:8080/socket.io/") in mode and
// connects to the namespace "/". It returns once the CONNECT reply arrived (and, in Upgrade mode,
// the upgrade finished).
func Dial(ctx context.Context, base string, mode Mode) (*Client, error) {
	c := &Client{
		base:    strings.TrimSuffix(base, "?") + "?EIO=4",
		http:    &http.Client{},
		Events:  make(chan Event, 256),
		Closed:  make(chan struct{}),
		acks:    make(map[int64]chan Ack),
		connect: make(chan string, 1),
	}
	var err error
	if mode == WebSocket {
		err = c.dialWS(ctx)
	} else {
		err = c.handshakePolling(ctx)
	}
	if err != nil {
		return nil, err
	}
	if err := c.send(ctx, "40"); err != nil {
		c.Close()
		return nil, err
	}
	select {
	case <-c.connect:
	case <-c.Closed:
		return nil, fmt.Errorf("eiotest: closed before connect: %v", c.closeErr())
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	if mode == Upgrade {
		if err := c.upgrade(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Transport returns "polling" or "websocket".
func (c *Client) Transport() string { return c.transport.Load().(string) }

func (c *Client) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the session with err.
func (c *Client) fail(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.Closed)
		c.wsMu.Lock()
		if c.ws != nil {
			_ = c.ws.Close()
		}
		c.wsMu.Unlock()
	})
}

// Close sends an Engine.IO close packet and ends the session.
func (c *Client) Close() {
	_ = c.send(context.Background(), "1")
	c.fail(errors.New("closed by client"))
}

func (c *Client) url(transport string) string {
	u := c.base + "&transport=" + transport
	if c.SID != "" {
		u += "&sid=" + url.QueryEscape(c.SID)
	}
	return u
}

func (c *Client) handshakePolling(ctx context.Context) error {
	c.transport.Store("polling")
	body, err := c.get(ctx)
	if err != nil {
		return err
	}
	first, rest, _ := bytes.Cut(body, []byte{0x1e})
	if err := c.onOpen(first); err != nil {
		return err
	}
	if len(rest) > 0 {
		c.handlePayload(rest)
	}
	c.pollStop, c.pollDone = make(chan struct{}), make(chan struct{})
	go c.pollLoop()
	return nil
}

func (c *Client) onOpen(p []byte) error {
	if len(p) == 0 || p[0] != '0' {
		return fmt.Errorf("eiotest: expected open packet, got %q", p)
	}
	var o struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(p[1:], &o); err != nil || o.SID == "" {
		return fmt.Errorf("eiotest: bad open packet %q", p)
	}
	c.SID, c.Open = o.SID, append(json.RawMessage(nil), p[1:]...)
	return nil
}

func (c *Client) get(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("polling"), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("eiotest: GET status %d: %s", resp.StatusCode, body)
	}
	return body, nil
}

// pollLoop keeps one GET outstanding until stopped or the session ends.
func (c *Client) pollLoop() {
	defer close(c.pollDone)
	for {
		select {
		case <-c.pollStop:
			return
		case <-c.Closed:
			return
		default:
		}
		body, err := c.get(context.Background())
		if err != nil {
			c.fail(err)
			return
		}
		c.handlePayload(body)
	}
}

func (c *Client) handlePayload(body []byte) {
	for _, p := range bytes.Split(body, []byte{0x1e}) {
		if len(p) > 0 && p[0] == 'b' {
			data, err := base64.StdEncoding.DecodeString(string(p[1:]))
			if err != nil {
				c.fail(fmt.Errorf("eiotest: bad base64 packet: %w", err))
				return
			}
			c.onBinary(data)
			continue
		}
		c.onPacket(p)
	}
}

// send writes one Engine.IO text packet on the current transport.
func (c *Client) send(ctx context.Context, pkt string) error {
	return c.sendFrames(ctx, []string{pkt}, nil)
}

// sendFrames writes a text packet followed by binary attachments, contiguously.
func (c *Client) sendFrames(ctx context.Context, texts []string, bins [][]byte) error {
	c.wsMu.Lock()
	ws := c.ws
	if ws != nil && c.Transport() == "websocket" {
		defer c.wsMu.Unlock()
		for _, t := range texts {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(t)); err != nil {
				return err
			}
		}
		for _, b := range bins {
			if err := ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
				return err
			}
		}
		return nil
	}
	c.wsMu.Unlock()
	parts := append([]string(nil), texts...)
	for _, b := range bins {
		parts = append(parts, "b"+base64.StdEncoding.EncodeToString(b))
	}
	c.postMu.Lock()
	defer c.postMu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("polling"), strings.NewReader(strings.Join(parts, "\x1e")))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		return fmt.Errorf("eiotest: POST status %d: %s", resp.StatusCode, body)
	}
	return nil
}

// onPacket handles one Engine.IO text packet.
func (c *Client) onPacket(p []byte) {
	if len(p) == 0 {
		return
	}
	switch p[0] {
	case '1':
		c.fail(errors.New("eiotest: server closed the session"))
	case '2':
		go func() { _ = c.send(context.Background(), "3") }()
	case '4':
		c.onSocketIO(p[1:])
	}
}

// onSocketIO handles a Socket.IO packet.
func (c *Client) onSocketIO(p []byte) {
	if len(p) == 0 {
		return
	}
	if p[0] == '5' || p[0] == '6' {
		dash := bytes.IndexByte(p, '-')
		n, err := strconv.Atoi(string(p[1:max(dash, 1)]))
		if dash < 0 || err != nil {
			c.fail(fmt.Errorf("eiotest: bad binary packet %q", p))
			return
		}
		c.mu.Lock()
		c.pending = &pendingBinary{header: append([]byte{p[0] - 3}, p[dash+1:]...), n: n}
		c.mu.Unlock()
		return
	}
	c.deliver(p, nil)
}

func (c *Client) onBinary(b []byte) {
	c.mu.Lock()
	pb := c.pending
	if pb == nil {
		c.mu.Unlock()
		return
	}
	pb.atts = append(pb.atts, b)
	if len(pb.atts) < pb.n {
		c.mu.Unlock()
		return
	}
	c.pending = nil
	c.mu.Unlock()
	c.deliver(pb.header, pb.atts)
}

// deliver dispatches a complete packet (binary types already mapped to 2/3).
func (c *Client) deliver(p []byte, atts [][]byte) {
	typ, rest := p[0], p[1:]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	id := int64(-1)
	if i > 0 {
		id, _ = strconv.ParseInt(string(rest[:i]), 10, 64)
	}
	data := rest[i:]
	switch typ {
	case '0':
		var v struct {
			SID string `json:"sid"`
		}
		_ = json.Unmarshal(data, &v)
		select {
		case c.connect <- v.SID:
		default:
		}
	case '1', '4':
		c.fail(fmt.Errorf("eiotest: socket.io packet %q", p))
	case '2':
		var args []json.RawMessage
		var name string
		if json.Unmarshal(data, &args) != nil || len(args) == 0 || json.Unmarshal(args[0], &name) != nil {
			return
		}
		select {
		case c.Events <- Event{Name: name, Args: args[1:], Attachments: atts}:
		default:
		}
	case '3':
		var args []json.RawMessage
		_ = json.Unmarshal(data, &args)
		c.mu.Lock()
		ch := c.acks[id]
		delete(c.acks, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- Ack{Args: args, Attachments: atts}
		}
	}
}

// Emit sends an event without ack. []byte arguments become binary attachments.
func (c *Client) Emit(ctx context.Context, event string, args ...any) error {
	return c.emit(ctx, -1, event, args)
}

// EmitAck sends an event and waits for its ack.
func (c *Client) EmitAck(ctx context.Context, event string, args ...any) (Ack, error) {
	ch := make(chan Ack, 1)
	c.mu.Lock()
	id := c.nextID
	c.nextID++
	c.acks[id] = ch
	c.mu.Unlock()
	if err := c.emit(ctx, id, event, args); err != nil {
		return Ack{}, err
	}
	select {
	case a := <-ch:
		return a, nil
	case <-c.Closed:
		return Ack{}, fmt.Errorf("eiotest: closed: %v", c.closeErr())
	case <-ctx.Done():
		return Ack{}, ctx.Err()
	}
}

func (c *Client) emit(ctx context.Context, id int64, event string, args []any) error {
	arr := []any{event}
	var bins [][]byte
	for _, a := range args {
		if b, ok := a.([]byte); ok {
			arr = append(arr, map[string]any{"_placeholder": true, "num": len(bins)})
			bins = append(bins, b)
			continue
		}
		arr = append(arr, a)
	}
	js, err := json.Marshal(arr)
	if err != nil {
		return err
	}
	head := "42"
	if len(bins) > 0 {
		head = "45" + strconv.Itoa(len(bins)) + "-"
	}
	if id >= 0 {
		head += strconv.FormatInt(id, 10)
	}
	return c.sendFrames(ctx, []string{head + string(js)}, bins)
}
