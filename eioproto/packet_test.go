package eioproto

import (
	"bytes"
	"errors"
	"testing"
)

func txt(t PacketType, s string) Packet { return Packet{Type: t, Data: []byte(s)} }
func bin(t PacketType, b ...byte) Packet {
	return Packet{Type: t, Data: append([]byte{}, b...), Binary: true}
}

// samePackets compares packets treating nil and empty data alike.
func samePackets(a, b []Packet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Binary != b[i].Binary || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func TestFrames(t *testing.T) {
	tests := []struct {
		name    string
		eio     int
		p       Packet
		wire    string
		wireBin bool
	}{
		{"v4 text", 4, txt(PacketMessage, "2[\"a\"]"), "42[\"a\"]", false},
		{"v4 binary is raw", 4, bin(PacketMessage, 1, 2), "\x01\x02", true},
		{"v3 binary has a type byte", 3, bin(PacketMessage, 1, 2), "\x04\x01\x02", true},
		{"v3 probe", 3, txt(PacketPing, "probe"), "2probe", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, isBin := AppendFrame(nil, tt.eio, tt.p)
			if string(got) != tt.wire || isBin != tt.wireBin {
				t.Fatalf("AppendFrame = %q %v, want %q %v", got, isBin, tt.wire, tt.wireBin)
			}
			back, err := DecodeFrame(tt.eio, isBin, got)
			if err != nil || !samePackets([]Packet{back}, []Packet{tt.p}) {
				t.Fatalf("DecodeFrame = %+v, %v", back, err)
			}
		})
	}
	bad := []struct {
		name   string
		eio    int
		binary bool
		msg    []byte
	}{
		{"v3 binary frame with type 9", 3, true, []byte{9}},
		{"v3 empty binary frame", 3, true, nil},
		{"empty text frame", 4, false, nil},
		{"text frame with type 7", 4, false, []byte("7x")},
	}
	for _, tt := range bad {
		if _, err := DecodeFrame(tt.eio, tt.binary, tt.msg); !errors.Is(err, ErrBadPacket) {
			t.Errorf("%s: err = %v, want ErrBadPacket", tt.name, err)
		}
	}
}
