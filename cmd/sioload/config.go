package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"sioproxy/eioclient"
)

// maxSourceAddrs bounds -source-range (each address gives ~28k ephemeral ports).
const maxSourceAddrs = 4096

// maxPayload bounds -payload (Engine.IO servers refuse more than 1 MB by default anyway).
const maxPayload = 64 << 20

// Config is a validated load run.
type Config struct {
	URL         string
	Path        string
	EIO         int
	Mode        eioclient.Mode
	Sessions    int
	Ramp        float64 // sessions started per second
	Rate        float64 // emits per second per session (0: none)
	Payload     int     // bytes per emit
	BinaryRatio float64 // share of emits sent as binary events
	Duration    time.Duration
	Hold        time.Duration
	Timeout     time.Duration // Dial bound, and how long to wait for outstanding acks
	Event       string
	SourceAddrs []net.IP
	Seed        uint64
	JSON        bool
}

// parseFlags parses the command line into a validated Config. Usage and errors go to out.
func parseFlags(args []string, out io.Writer) (Config, error) {
	var c Config
	var mode, addrs, rng string
	fs := flag.NewFlagSet("sioload", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: sioload -url http://host:port [flags]\n\n"+
			"Opens -sessions Socket.IO sessions at -ramp per second, emits -rate events per second\n"+
			"on each (open loop) for -duration, and reports handshake rate, emit rate, ack latency\n"+
			"percentiles and errors by kind.\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.URL, "url", "", "server base URL: http(s):// or ws(s)://host:port (required)")
	fs.StringVar(&c.Path, "path", eioclient.DefaultPath, "Engine.IO path")
	fs.IntVar(&c.EIO, "eio", 4, "Engine.IO revision: 3 (socket.io 2.x) or 4")
	fs.StringVar(&mode, "mode", "websocket", "transport: polling, upgrade or websocket")
	fs.IntVar(&c.Sessions, "sessions", 100, "number of sessions")
	fs.Float64Var(&c.Ramp, "ramp", 100, "sessions started per second")
	fs.Float64Var(&c.Rate, "rate", 1, "emits per second per session, open loop (0: connect only)")
	fs.IntVar(&c.Payload, "payload", 64, "payload bytes per emit")
	fs.Float64Var(&c.BinaryRatio, "binary-ratio", 0, "share of emits sent as binary events, 0..1")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to emit once every session is started")
	fs.DurationVar(&c.Hold, "hold", 0, "keep the sessions open and idle this long after the run (memory measurement)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "bound of each connect, and grace for outstanding acks at the end")
	fs.StringVar(&c.Event, "event", "echo", "event name to emit; the server must ack it")
	fs.StringVar(&addrs, "source-addrs", "", "comma-separated local IPs to bind, round robin (past 64k ports)")
	fs.StringVar(&rng, "source-range", "", "local IPv4 range to bind, e.g. 127.0.0.1-127.0.0.20")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the payload-kind and phase randomness")
	fs.BoolVar(&c.JSON, "json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	m, err := eioclient.ParseMode(mode)
	if err != nil {
		return Config{}, fmt.Errorf("-mode: %q is not polling, upgrade or websocket", mode)
	}
	c.Mode = m
	switch {
	case addrs != "" && rng != "":
		return Config{}, errors.New("-source-addrs and -source-range are exclusive")
	case addrs != "":
		if c.SourceAddrs, err = parseAddrList(addrs); err != nil {
			return Config{}, fmt.Errorf("-source-addrs: %w", err)
		}
	case rng != "":
		if c.SourceAddrs, err = parseAddrRange(rng); err != nil {
			return Config{}, fmt.Errorf("-source-range: %w", err)
		}
	}
	return c, c.Validate()
}

// Validate checks every field; the error names the flag.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		return errors.New("-url is required")
	case err != nil:
		return fmt.Errorf("-url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Errorf("-url: scheme %q is not http, https, ws or wss", u.Scheme)
	case u.Host == "":
		return fmt.Errorf("-url: %q has no host", c.URL)
	case !strings.HasPrefix(c.Path, "/"):
		return fmt.Errorf("-path: %q must start with /", c.Path)
	case c.EIO != 3 && c.EIO != 4:
		return fmt.Errorf("-eio: %d is not 3 or 4", c.EIO)
	case c.Mode < eioclient.Polling || c.Mode > eioclient.WebSocket:
		return fmt.Errorf("-mode: invalid %d", int(c.Mode))
	case c.Sessions < 1:
		return fmt.Errorf("-sessions: %d must be at least 1", c.Sessions)
	case !(c.Ramp > 0) || c.Ramp > 1e6:
		return fmt.Errorf("-ramp: %v must be in (0, 1e6]", c.Ramp)
	case !(c.Rate >= 0) || c.Rate > 1e5:
		return fmt.Errorf("-rate: %v must be in [0, 1e5]", c.Rate)
	case c.Payload < 0 || c.Payload > maxPayload:
		return fmt.Errorf("-payload: %d must be in [0, %d]", c.Payload, maxPayload)
	case !(c.BinaryRatio >= 0 && c.BinaryRatio <= 1):
		return fmt.Errorf("-binary-ratio: %v must be in [0, 1]", c.BinaryRatio)
	case c.Duration <= 0:
		return fmt.Errorf("-duration: %v must be positive", c.Duration)
	case c.Hold < 0:
		return fmt.Errorf("-hold: %v must not be negative", c.Hold)
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout: %v must be positive", c.Timeout)
	case c.Event == "":
		return errors.New("-event must not be empty")
	}
	return nil
}

// parseAddrList parses "ip,ip,...".
func parseAddrList(s string) ([]net.IP, error) {
	var ips []net.IP
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		ip := net.ParseIP(f)
		if ip == nil {
			return nil, fmt.Errorf("%q is not an IP address", f)
		}
		ips = append(ips, ip)
	}
	if len(ips) > maxSourceAddrs {
		return nil, fmt.Errorf("%d addresses, at most %d", len(ips), maxSourceAddrs)
	}
	return ips, nil
}

// parseAddrRange parses "a.b.c.d-e.f.g.h" (IPv4, inclusive, first <= last).
func parseAddrRange(s string) ([]net.IP, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return nil, fmt.Errorf("%q is not FIRST-LAST", s)
	}
	a, b := net.ParseIP(strings.TrimSpace(lo)).To4(), net.ParseIP(strings.TrimSpace(hi)).To4()
	if a == nil || b == nil {
		return nil, fmt.Errorf("%q: both ends must be IPv4 addresses", s)
	}
	x, y := binary.BigEndian.Uint32(a), binary.BigEndian.Uint32(b)
	if x > y {
		return nil, fmt.Errorf("%q: first address is after the last", s)
	}
	if y-x >= maxSourceAddrs {
		return nil, fmt.Errorf("%q: %d addresses, at most %d", s, uint64(y-x)+1, maxSourceAddrs)
	}
	ips := make([]net.IP, 0, y-x+1)
	for v := x; ; v++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, v)
		ips = append(ips, ip)
		if v == y {
			break
		}
	}
	return ips, nil
}
