package eioproto

import (
	"reflect"
	"testing"
)

// Each fuzz target checks that decoding never panics and that what decodes re-encodes to
// something that decodes to the same packets.

func FuzzDecodePayloadV3(f *testing.F) {
	for _, s := range []string{
		`96:0{"sid":"ptzi_578ycUci8WLB9G1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}2:40`,
		"6:4hello6:4world", "2:4€", "3:4😀1:6", "10:b4AQIDBA==", "0:", "1:",
		"\x00\x02\xff40\x01\x05\xff\x04\x01\x02\x03\x04", "\x00\x04\xff4€", "2:4\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, err := DecodePayloadV3(body)
		prefix, perr := AppendDecodePayloadV3(nil, body)
		if err == nil && (perr != nil || !samePackets(prefix, pkts)) {
			t.Fatalf("AppendDecodePayloadV3(%q) = %+v, %v; DecodePayloadV3 gave %+v", body, prefix, perr, pkts)
		}
		if err != nil {
			return
		}
		enc := AppendPayloadV3(nil, pkts)
		back, err := DecodePayloadV3(enc)
		if len(pkts) == 0 {
			return // "0:" re-encodes to nothing, which is not a payload
		}
		if err != nil || !samePackets(back, pkts) {
			t.Fatalf("round trip of %q: %q decodes to %+v, %v; want %+v", body, enc, back, err, pkts)
		}
	})
}

// FuzzDecodePayloadV4 also checks that ScanPayloadV4 sees the packets AppendDecodePayloadV4 keeps
// and fails with the same error.
func FuzzDecodePayloadV4(f *testing.F) {
	for _, s := range []string{
		`0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
		"4hello\x1e2\x1e4world", "4€", "bAQIDBA==", "451-[\"x\",{}]\x1ebAQ==", "b", "6", "4a\x1e", "", "\x1e", "40",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, err := DecodePayloadV4(body)
		prefix, perr := AppendDecodePayloadV4(nil, body)
		if err == nil && (perr != nil || !samePackets(prefix, pkts)) {
			t.Fatalf("AppendDecodePayloadV4(%q) = %+v, %v; DecodePayloadV4 gave %+v", body, prefix, perr, pkts)
		}
		var scanned []Packet
		_, serr := ScanPayloadV4(body, nil, func(p Packet) bool {
			scanned = append(scanned, Packet{Type: p.Type, Binary: p.Binary, Data: append([]byte{}, p.Data...)})
			return true
		})
		if serr != err || !samePackets(scanned, prefix) {
			t.Fatalf("ScanPayloadV4(%q) = %+v, %v; AppendDecodePayloadV4 gave %+v, %v", body, scanned, serr, prefix, perr)
		}
		if err != nil {
			return
		}
		enc := AppendPayloadV4(nil, pkts)
		back, err := DecodePayloadV4(enc)
		if err != nil || !samePackets(back, pkts) {
			t.Fatalf("round trip of %q: %q decodes to %+v, %v; want %+v", body, enc, back, err, pkts)
		}
	})
}

func FuzzDecodeSocketIO(f *testing.F) {
	for _, s := range []string{
		"0", `0{"sid":"abc"}`, `0/admin,{"sid":"a"}`, "0/admin,", `21["chat"]`, `212["chat"]`, `3123["ok"]`,
		`51-["up",{"_placeholder":true,"num":0}]`, `52-7["up",{}]`, `62-/a,7[1]`, "1/a", "2/,", "2/a,1[]",
		`4{"message":"no"}`, "5-", "6999-",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeSocketIO(b)
		if err != nil {
			return
		}
		if p.Type < SIOConnect || p.Type > SIOBinaryAck || p.ID < NoAck || p.Attachments < 0 ||
			(p.Attachments > 0 && p.Type != SIOBinaryEvent && p.Type != SIOBinaryAck) || p.Nsp == "" || p.Nsp[0] != '/' {
			t.Fatalf("inconsistent packet %+v from %q", p, b)
		}
		enc := AppendSocketIO(nil, p)
		back, err := DecodeSocketIO(enc)
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip of %q: %q decodes to %+v, %v; want %+v", b, enc, back, err, p)
		}
	})
}
