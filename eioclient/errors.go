package eioclient

import (
	"context"
	"errors"
	"fmt"
	"net"

	"sioproxy/eioproto"
)

// Kind classifies an error for counting (a load generator reports errors by kind).
type Kind string

// Error kinds.
const (
	KindDial       Kind = "dial"        // TCP connect or WebSocket dial failed
	KindHTTPStatus Kind = "http_status" // a polling request or WS handshake got a non-2xx status
	KindHandshake  Kind = "handshake"   // no valid Engine.IO open packet
	KindConnect    Kind = "connect"     // Socket.IO CONNECT refused or not answered
	KindUpgrade    Kind = "upgrade"     // the polling to WebSocket upgrade failed
	KindTimeout    Kind = "timeout"     // an I/O deadline or the Dial context expired
	KindPing       Kind = "ping"        // heartbeat timeout
	KindAckTimeout Kind = "ack_timeout" // EmitAck's context ended before the ack came
	KindClosed     Kind = "closed"      // the server or transport closed the session
	KindProtocol   Kind = "protocol"    // a malformed packet or payload
	KindIO         Kind = "io"          // another network error
	KindOther      Kind = "other"       // anything else (a bad argument, a local error)
)

// Error is an error with a Kind and the operation that failed.
type Error struct {
	Kind Kind
	Op   string // e.g. "handshake", "poll", "post", "probe"
	Err  error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("eioclient: %s: %s", e.Op, e.Kind)
	}
	return fmt.Sprintf("eioclient: %s: %s: %v", e.Op, e.Kind, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrClosed is the cause of operations on a Conn closed by Close.
var ErrClosed = errors.New("eioclient: connection closed")

// KindOf returns the Kind of err: the one of the first *Error in its chain, else a guess from the
// cause (timeouts, network errors), else KindOther. nil gives "".
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return classify(err)
}

// classify guesses the kind of a raw cause.
func classify(err error) Kind {
	var te interface{ Timeout() bool }
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) && oe.Op == "dial":
		return KindDial
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return KindTimeout
	case errors.Is(err, eioproto.ErrBadPacket), errors.Is(err, eioproto.ErrBadLength), errors.Is(err, eioproto.ErrEmptyPayload):
		return KindProtocol
	case errors.Is(err, ErrClosed):
		return KindClosed
	case errors.As(err, &ne), errors.As(err, &oe):
		return KindIO
	}
	return KindOther
}

// wrap returns err as an *Error with kind (or the guessed kind when kind is ""). An *Error passes
// through unchanged.
func wrap(op string, kind Kind, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if kind == "" {
		kind = classify(err)
	}
	return &Error{Kind: kind, Op: op, Err: err}
}
