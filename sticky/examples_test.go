package sticky

import (
	"strconv"
	"strings"
)

// Byte-exact examples from engineio-for-proxies.md §2.
const (
	// v4Open is the 118-byte v4 polling handshake body.
	v4Open = `0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
	// v3Packet96 is the 96-char v3 open packet; v3Text96 frames it with socket.io 2.x's CONNECT.
	v3Packet96 = `0{"sid":"ptzi_578ycUci8WLB9G1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}`
	v3Text96   = "96:" + v3Packet96 + "2:40"
	// v3Packet97 is the 97-char variant (socket.io-sticky#2).
	v3Packet97 = `0{"sid":"ptzi_578ycUci8WLB9G1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":60000}`
	v3Text97   = "97:" + v3Packet97 + "2:40"
	// v3Binary96 is v3Text96 in XHR2 binary framing: 00 09 06 FF <packet> 00 02 FF 34 30.
	v3Binary96 = "\x00\x09\x06\xff" + v3Packet96 + "\x00\x02\xff40"
	// jsonp96 is v3Text96 as a JSONP response (j=0).
	jsonp96 = `___eio[0]("96:0{\"sid\":\"ptzi_578ycUci8WLB9G1\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":5000}2:40");`
)

// v4Body returns a v4 open packet with the given sid JSON literal contents (already escaped).
func v4Body(sidJSON string) string {
	return `0{"sid":"` + sidJSON + `","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`
}

// v3TextBody frames a packet in v3 text with the right UTF-16 length, followed by more.
func v3TextBody(packet, more string) string {
	return strconv.Itoa(utf16Len(packet)) + ":" + packet + more
}

// v3BinaryBody frames a string packet in v3 binary framing, followed by more.
func v3BinaryBody(packet, more string) string {
	var b strings.Builder
	b.WriteByte(0)
	for _, c := range strconv.Itoa(len(packet)) {
		b.WriteByte(byte(c - '0'))
	}
	b.WriteByte(0xFF)
	return b.String() + packet + more
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}
