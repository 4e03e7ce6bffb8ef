// Package backendtls builds the client TLS configuration of an https or wss backend: the proxy's
// connections, active health probes and mirror targets verify a backend the same way.
package backendtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"sioproxy/balancer"
)

// Config is the client TLS configuration of a backend, always verified: against its CA file (else
// the system roots), for its server name (else the host of its address), also sent as SNI; TLS 1.2
// at least, HTTP/1.1 by ALPN. The CA file is read on each call.
func Config(s balancer.Spec) (*tls.Config, error) {
	conf := &tls.Config{ServerName: s.TLSServerName, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
	if conf.ServerName == "" {
		conf.ServerName = s.Addr
		if h, _, err := net.SplitHostPort(s.Addr); err == nil {
			conf.ServerName = h
		}
	}
	if s.TLSCAFile != "" {
		pem, err := os.ReadFile(s.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("backend %s: tls.ca_file: %w", s.ID, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("backend %s: tls.ca_file %s holds no PEM certificate", s.ID, s.TLSCAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}
