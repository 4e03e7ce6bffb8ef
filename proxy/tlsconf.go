package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// CertFiles is one certificate and key pair of the TLS listener, as PEM files.
type CertFiles struct {
	CertFile string // chain, leaf first
	KeyFile  string
}

// TLSOptions configure TLS termination (see NewCertStore).
type TLSOptions struct {
	Certificates   []CertFiles // chosen by SNI (and by what the client supports: ECDSA or RSA); the first is the default
	MinVersion     uint16      // tls.VersionTLS12 (the default when 0) or tls.VersionTLS13
	ClientCAFile   string      // PEM CAs of client certificates ("" = no client certificates)
	ClientOptional bool        // with ClientCAFile: a client may send no certificate (one it sends is verified)
}

// CertStore holds the TLS settings of the client listener and re-reads their files on Reload: new
// connections get the new certificates, established ones keep theirs (a handshake is done once).
// A file that does not load is refused with an error naming it, and the running set is kept.
type CertStore struct {
	log  *zap.Logger
	mu   sync.Mutex // serialises installs; guards opts
	opts TLSOptions
	cur  atomic.Pointer[tls.Config]
	base *tls.Config
}

// NewCertStore loads the certificates of o; an error names the file that failed.
func NewCertStore(log *zap.Logger, o TLSOptions) (*CertStore, error) {
	if log == nil {
		log = zap.NewNop()
	}
	s := &CertStore{log: log}
	cfg, err := buildTLS(o)
	if err != nil {
		return nil, err
	}
	s.opts = o
	s.cur.Store(cfg)
	s.base = &tls.Config{
		MinVersion: cfg.MinVersion,
		NextProtos: []string{"http/1.1"},
		// Every handshake takes the current generation: a reload swaps it for new connections.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.cur.Load(), nil },
	}
	s.logLoaded("tls certificates loaded", cfg)
	return s, nil
}

// ServerConfig is the tls.Config of the listener (ListenerOptions.TLS); it follows reloads.
func (s *CertStore) ServerConfig() *tls.Config { return s.base }

// Reload re-reads every certificate, key and CA file. On error nothing changes; the error, also
// logged, names the file.
func (s *CertStore) Reload() error {
	s.mu.Lock()
	o := s.opts
	s.mu.Unlock()
	return s.Update(o)
}

// Update loads new options (a config reload that changed the tls section) and installs them. On
// error nothing changes; the error, also logged, names the file.
func (s *CertStore) Update(o TLSOptions) error {
	g, err := s.Prepare(o)
	if err != nil {
		s.log.Error("tls reload refused, running certificates kept", zap.Error(err))
		return err
	}
	s.Install(g)
	return nil
}

// CertSet is a loaded generation of the listener's TLS settings, not yet in use (Prepare).
type CertSet struct {
	opts TLSOptions
	cfg  *tls.Config
}

// Prepare reads the files of o into a CertSet without changing what is served, so that a reload
// can build everything before it swaps anything. The error names the file that failed.
func (s *CertStore) Prepare(o TLSOptions) (*CertSet, error) {
	cfg, err := buildTLS(o)
	if err != nil {
		return nil, err
	}
	return &CertSet{opts: o, cfg: cfg}, nil
}

// Options returns the options the store serves now (a reload with unchanged keys re-reads them).
func (s *CertStore) Options() TLSOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

// Install serves a prepared CertSet to every new handshake from now on.
func (s *CertStore) Install(g *CertSet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts = g.opts
	s.cur.Store(g.cfg)
	s.logLoaded("tls certificates reloaded", g.cfg)
}

func (s *CertStore) logLoaded(msg string, cfg *tls.Config) {
	for i, c := range cfg.Certificates {
		f := s.opts.Certificates[i]
		fields := []zap.Field{zap.String("cert_file", f.CertFile), zap.Strings("names", certNames(c.Leaf)),
			zap.Time("not_after", c.Leaf.NotAfter)}
		if time.Now().After(c.Leaf.NotAfter) {
			s.log.Warn("tls certificate expired", fields...)
			continue
		}
		s.log.Info(msg, fields...)
	}
}

// buildTLS loads one generation of the listener's TLS settings.
func buildTLS(o TLSOptions) (*tls.Config, error) {
	if len(o.Certificates) == 0 {
		return nil, errors.New("tls: no certificate")
	}
	cfg := &tls.Config{
		MinVersion: o.MinVersion,
		NextProtos: []string{"http/1.1"},
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.MinVersion != tls.VersionTLS12 && cfg.MinVersion != tls.VersionTLS13 {
		return nil, fmt.Errorf("tls: minimum version %#x is not 1.2 or 1.3", cfg.MinVersion)
	}
	for _, f := range o.Certificates {
		c, err := loadPair(f)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = append(cfg.Certificates, c)
	}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls client CA file %s: %w", o.ClientCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client CA file %s: no PEM certificate in it", o.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if o.ClientOptional {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return cfg, nil
}

// loadPair loads a certificate and its key; the error names the file at fault.
func loadPair(f CertFiles) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls certificate file %s: %w", f.CertFile, err)
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls key file %s: %w", f.KeyFile, err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair says which side it could not read ("failed to find any PEM data in key
		// input", "private key does not match public key", ...).
		return tls.Certificate{}, fmt.Errorf("tls certificate file %s, key file %s: %w", f.CertFile, f.KeyFile, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("tls certificate file %s: %w", f.CertFile, err)
		}
	}
	return c, nil
}

func certNames(leaf *x509.Certificate) []string {
	names := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = append(names, leaf.Subject.CommonName)
	}
	return names
}
