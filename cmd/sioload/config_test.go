package main

import (
	"errors"
	"flag"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"sioproxy/eioclient"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args string
		err  string // substring; "" means valid
	}{
		{"minimal", "-url http://127.0.0.1:1", ""},
		{"everything", "-url ws://h:1 -path /x/ -eio 3 -mode upgrade -sessions 5 -ramp 2.5 -rate 0 -payload 0 -binary-ratio 1 -duration 1s -hold 2s -timeout 3s -event e -source-range 127.0.0.1-127.0.0.3 -seed 9 -json", ""},
		{"no url", "", "-url is required"},
		{"bad scheme", "-url ftp://h", "scheme"},
		{"no host", "-url http://", "no host"},
		{"bad path", "-url http://h -path x", "-path"},
		{"bad eio", "-url http://h -eio 5", "-eio"},
		{"bad mode", "-url http://h -mode carrier-pigeon", "-mode"},
		{"no sessions", "-url http://h -sessions 0", "-sessions"},
		{"zero ramp", "-url http://h -ramp 0", "-ramp"},
		{"NaN ramp", "-url http://h -ramp NaN", "-ramp"},
		{"negative rate", "-url http://h -rate -1", "-rate"},
		{"negative payload", "-url http://h -payload -1", "-payload"},
		{"huge payload", "-url http://h -payload 999999999", "-payload"},
		{"ratio above 1", "-url http://h -binary-ratio 1.5", "-binary-ratio"},
		{"zero duration", "-url http://h -duration 0s", "-duration"},
		{"negative hold", "-url http://h -hold -1s", "-hold"},
		{"zero timeout", "-url http://h -timeout 0s", "-timeout"},
		{"empty event", "-url http://h -event=", "-event"},
		{"both sources", "-url http://h -source-addrs 127.0.0.1 -source-range 127.0.0.1-127.0.0.2", "exclusive"},
		{"bad source addr", "-url http://h -source-addrs 127.0.0.1,nope", "-source-addrs"},
		{"reversed range", "-url http://h -source-range 127.0.0.9-127.0.0.1", "after the last"},
		{"IPv6 range", "-url http://h -source-range ::1-::2", "IPv4"},
		{"range too big", "-url http://h -source-range 10.0.0.0-10.1.0.0", "at most"},
		{"stray argument", "-url http://h extra", "unexpected argument"},
		{"unknown flag", "-url http://h -bogus", "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(strings.Fields(tt.args), io.Discard)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func TestParseFlagsValues(t *testing.T) {
	c, err := parseFlags(strings.Fields("-url http://h:1 -mode polling -eio 3 -sessions 7 -duration 3s -source-addrs 127.0.0.2,127.0.0.3"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != eioclient.Polling || c.EIO != 3 || c.Sessions != 7 || c.Duration != 3*time.Second ||
		len(c.SourceAddrs) != 2 || !c.SourceAddrs[1].Equal(net.ParseIP("127.0.0.3")) {
		t.Fatalf("config %+v", c)
	}
	d, err := parseFlags([]string{"-url", "http://h"}, io.Discard)
	if err != nil || d.Mode != eioclient.WebSocket || d.EIO != 4 || d.Path != "/socket.io/" || d.Event != "echo" {
		t.Fatalf("defaults %+v, %v", d, err)
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestParseAddrRange(t *testing.T) {
	ips, err := parseAddrRange("127.0.0.254-127.0.1.1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	if want := "127.0.0.254 127.0.0.255 127.0.1.0 127.0.1.1"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	one, err := parseAddrRange("127.0.0.5-127.0.0.5")
	if err != nil || len(one) != 1 {
		t.Fatalf("single-address range: %v %v", one, err)
	}
	if _, err := parseAddrRange("127.0.0.1"); err == nil {
		t.Fatal("a range without '-' must fail")
	}
}
