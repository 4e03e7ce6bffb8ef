package mirror

import (
	"encoding/binary"
	"errors"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Frame parser errors. After one, the parser ignores the rest of its stream.
var (
	ErrBadOpcode      = errors.New("websocket: reserved opcode")
	ErrBadControl     = errors.New("websocket: fragmented or oversized control frame")
	ErrBadContinue    = errors.New("websocket: continuation without a message, or a message inside a message")
	ErrCompressed     = errors.New("websocket: compressed frame, and permessage-deflate was not negotiated")
	ErrBadDeflate     = errors.New("websocket: a compressed message does not inflate")
	ErrFrameTooLarge  = errors.New("websocket: frame length over 2^63")
	ErrMessageTooLong = errors.New("websocket: message over the mirror limit")
)

// FrameParser reassembles WebSocket messages from the raw bytes of one direction of a connection, as
// they pass by: it handles headers split across chunks, masking (client frames), fragmentation and
// control frames interleaved with fragments. It never writes to the stream it watches.
//
// A FrameParser is not safe for concurrent use; one direction feeds it from one goroutine.
type FrameParser struct {
	// OnMessage receives each complete message: opcode OpText or OpBinary (data messages) or a
	// control opcode. payload is the parser's buffer, valid only during the call.
	OnMessage func(opcode byte, payload []byte)
	// MaxMessage bounds a reassembled message (and an inflated one); longer messages fail the
	// parser. 0 means 1 MiB.
	MaxMessage int
	// Deflate, when not nil, inflates messages sent compressed (RSV1 on their first frame), as the
	// permessage-deflate extension the connection negotiated says (RFC 7692). nil: a compressed
	// frame is an error (ErrCompressed).
	Deflate *Inflater

	hdr    [14]byte // header bytes being collected
	hdrN   int
	need   int    // header length once known (0: unknown yet)
	remain uint64 // payload bytes left in the current frame
	masked bool
	mask   [4]byte
	maskAt int // offset of the next payload byte within the mask cycle

	frameOp  byte // opcode of the current frame
	fin      bool
	msgOp    byte   // opcode of the fragmented message in progress (0: none)
	msgZ     bool   // that message is compressed (RSV1 on its first frame)
	msg      []byte // data message being reassembled
	ctl      []byte // control frame being collected
	err      error
	inFrame  bool // header parsed, payload being read
	frames   uint64
	messages uint64
}

// Err returns the error that stopped the parser, or nil.
func (f *FrameParser) Err() error { return f.err }

// Messages returns how many messages the parser has delivered.
func (f *FrameParser) Messages() uint64 { return f.messages }

func (f *FrameParser) maxMessage() int {
	if f.MaxMessage > 0 {
		return f.MaxMessage
	}
	return 1 << 20
}

// Feed parses the next chunk of the stream. It returns the parser's error, if any (sticky).
func (f *FrameParser) Feed(p []byte) error {
	for len(p) > 0 && f.err == nil {
		if !f.inFrame {
			p = f.readHeader(p)
			continue
		}
		n := len(p)
		if uint64(n) > f.remain {
			n = int(f.remain)
		}
		f.payload(p[:n])
		p = p[n:]
		f.remain -= uint64(n)
		if f.remain == 0 {
			f.endFrame()
		}
	}
	return f.err
}

// readHeader consumes header bytes from p; when the header is complete it starts the frame.
func (f *FrameParser) readHeader(p []byte) []byte {
	for len(p) > 0 {
		f.hdr[f.hdrN] = p[0]
		f.hdrN++
		p = p[1:]
		if f.hdrN == 2 {
			f.need = 2
			switch f.hdr[1] & 0x7f {
			case 126:
				f.need += 2
			case 127:
				f.need += 8
			}
			if f.hdr[1]&0x80 != 0 {
				f.need += 4
			}
		}
		if f.hdrN >= 2 && f.hdrN == f.need {
			f.startFrame()
			return p
		}
	}
	return p
}

func (f *FrameParser) startFrame() {
	h := f.hdr[:f.hdrN]
	f.hdrN, f.need = 0, 0
	f.fin = h[0]&0x80 != 0
	op := h[0] & 0x0f
	rsv1 := h[0]&0x40 != 0
	if rsv1 && (f.Deflate == nil || op != OpText && op != OpBinary) {
		f.err = ErrCompressed // not negotiated, or on a continuation or control frame (RFC 7692 §6)
		return
	}
	f.masked = h[1]&0x80 != 0
	length := uint64(h[1] & 0x7f)
	rest := h[2:]
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
	case 127:
		length = binary.BigEndian.Uint64(rest)
		rest = rest[8:]
		if length>>63 != 0 {
			f.err = ErrFrameTooLarge
			return
		}
	}
	if f.masked {
		copy(f.mask[:], rest[:4])
	}
	f.maskAt = 0
	switch op {
	case OpText, OpBinary:
		if f.msgOp != 0 {
			f.err = ErrBadContinue
			return
		}
		f.msgOp = op
		f.msgZ = rsv1
		f.msg = f.msg[:0]
	case OpContinuation:
		if f.msgOp == 0 {
			f.err = ErrBadContinue
			return
		}
	case OpClose, OpPing, OpPong:
		if !f.fin || length > 125 {
			f.err = ErrBadControl
			return
		}
		f.ctl = f.ctl[:0]
	default:
		f.err = ErrBadOpcode
		return
	}
	if op < OpClose && uint64(len(f.msg))+length > uint64(f.maxMessage()) {
		f.err = ErrMessageTooLong
		return
	}
	f.frameOp = op
	f.remain = length
	f.inFrame = true
	f.frames++
	if length == 0 {
		f.endFrame()
	}
}

// payload appends (unmasked) payload bytes of the current frame.
func (f *FrameParser) payload(p []byte) {
	var dst *[]byte
	if f.frameOp >= OpClose {
		dst = &f.ctl
	} else {
		dst = &f.msg
	}
	start := len(*dst)
	*dst = append(*dst, p...)
	if f.masked {
		b := (*dst)[start:]
		for i := range b {
			b[i] ^= f.mask[(f.maskAt+i)&3]
		}
		f.maskAt = (f.maskAt + len(b)) & 3
	}
}

func (f *FrameParser) endFrame() {
	f.inFrame = false
	if f.frameOp >= OpClose {
		f.deliver(f.frameOp, f.ctl)
		return
	}
	if f.fin {
		op := f.msgOp
		f.msgOp = 0
		msg := f.msg
		if f.msgZ {
			var err error
			if msg, err = f.Deflate.inflate(msg, f.maxMessage()); err != nil {
				f.err = err
				return
			}
		}
		f.deliver(op, msg)
		if cap(f.msg) > 64<<10 {
			f.msg = nil // do not pin a large buffer for the life of the connection
		}
	}
}

func (f *FrameParser) deliver(op byte, payload []byte) {
	f.messages++
	if f.OnMessage != nil {
		f.OnMessage(op, payload)
	}
}
