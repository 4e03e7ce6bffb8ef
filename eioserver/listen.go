package eioserver

import (
	"net"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Listener is a Server serving HTTP on a TCP address.
type Listener struct {
	// URL is the base URL the server answers on, e.g. http://127.0.0.1:41234.
	URL  string
	srv  *Server
	http *fasthttp.Server
	done chan struct{}
}

// Listen serves srv on addr ("127.0.0.1:0" picks a free port) in the background. name is the HTTP
// Server header.
func (srv *Server) Listen(addr, name string) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &Listener{
		URL: "http://" + ln.Addr().String(),
		srv: srv,
		http: &fasthttp.Server{
			Handler:            srv.Handler,
			Name:               name,
			MaxRequestBodySize: 2 * srv.opts.MaxPayload, // the server answers 413 itself past MaxPayload
			Logger:             zap.NewStdLog(srv.log),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(l.done)
		if err := l.http.Serve(ln); err != nil {
			srv.log.Warn("eioserver stopped", zap.String("server", srv.opts.Name), zap.Error(err))
		}
	}()
	return l, nil
}

// Close closes every session, stops the listener and waits for it.
func (l *Listener) Close() {
	l.srv.Close()
	_ = l.http.Shutdown()
	<-l.done
}
