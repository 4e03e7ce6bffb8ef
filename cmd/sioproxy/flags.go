package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// options are the command-line flags; a flag that is set overrides the config file.
type options struct {
	config    string
	listen    string
	backends  listFlag
	logLevel  string
	logFormat string
	policy    string
	admin     string
	consul    string
	services  listFlag
	kubecfg   string
	k8sSvcs   listFlag
	k8sZone   string
	tlsCert   string
	tlsKey    string
	ppFrom    listFlag
	paths     listFlag
	version   bool
	set       map[string]bool // flags given on the command line
}

func parseFlags(name string, args []string, stderr io.Writer) (*options, error) {
	o := &options{set: map[string]bool{}}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.config, "config", "", "YAML config `file` (see configs/sioproxy.example.yaml)")
	fs.StringVar(&o.listen, "listen", "", "client-facing `address` (default 127.0.0.1:8080)")
	fs.Var(&o.backends, "backend", "backend `URL` (repeatable), e.g. http://127.0.0.1:3001; replaces the file's backends")
	fs.StringVar(&o.logLevel, "log-level", "", "log `level`: debug, info, warn, error (default info)")
	fs.StringVar(&o.logFormat, "log-format", "", "log `format`: json or console (default json)")
	fs.Var(&o.paths, "path", "Engine.IO path `prefix` (repeatable), e.g. /socket.io/ or /engine.io/; replaces sticky.paths")
	fs.StringVar(&o.policy, "policy", "", "placement `policy` of new sessions: p2c, round_robin, least_sessions, hash")
	fs.StringVar(&o.admin, "admin-listen", "", "admin API and metrics `address` (default 127.0.0.1:9090; empty string disables)")
	fs.StringVar(&o.consul, "consul-addr", "", "Consul agent `host:port` for discovery")
	fs.Var(&o.services, "consul-service", "Consul service `name` whose healthy instances are backends (repeatable)")
	fs.StringVar(&o.kubecfg, "kubeconfig", "", "kubeconfig `file` for Kubernetes discovery (default $KUBECONFIG, else the pod's service account)")
	fs.Var(&o.k8sSvcs, "k8s-service", "Kubernetes Service `namespace/name` whose ready endpoints are backends (repeatable)")
	fs.StringVar(&o.k8sZone, "k8s-zone", "", "the proxy's own topology `zone` (discovery.kubernetes.zone)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve TLS on -listen with this certificate `file` (PEM chain; with -tls-key); replaces the file's tls.certificates")
	fs.StringVar(&o.tlsKey, "tls-key", "", "private key `file` (PEM) of -tls-cert")
	fs.Var(&o.ppFrom, "proxy-protocol-from", "peer `CIDR` or IP whose connections begin with a PROXY v1/v2 header (repeatable); replaces the file's proxy_protocol_from")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage:
  %[1]s [-config FILE] [-listen ADDR] [-backend URL]... [-log-level LEVEL]
  %[1]s -listen 0.0.0.0:443 -tls-cert FILE -tls-key FILE -backend URL...
  %[1]s -listen ADDR -consul-addr HOST:PORT -consul-service NAME...
  %[1]s -listen ADDR [-kubeconfig FILE] -k8s-service NAMESPACE/NAME...
  %[1]s check -config FILE     validate a config file and exit
  %[1]s demo                   run the proxy on 127.0.0.1:8080 in front of three demo backends

Flags:
`, name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}
