package browser

import (
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"

	"sioproxy/test/testkit"
)

// clientLibs maps a Socket.IO client major version to its browser bundle under test/node/node_modules.
// The bundles are read at test time from the npm install, never copied into the repository.
var clientLibs = map[string]string{
	"4": "socket.io-client/dist/socket.io.min.js",
	"2": "socket.io-client-v2/dist/socket.io.js",
}

// pageServer serves testdata/client.html and the client bundles on its own origin, so that the page
// talks to the proxy cross-origin as a real web app served by another host would.
func pageServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /client.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFile(w, r, filepath.Join("testdata", "client.html"))
	})
	mux.HandleFunc("GET /lib/{file}", func(w http.ResponseWriter, r *http.Request) {
		var rel string
		switch r.PathValue("file") {
		case "v4.js":
			rel = clientLibs["4"]
		case "v2.js":
			rel = clientLibs["2"]
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, filepath.Join(testkit.NodeDir(), "node_modules", rel))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// clientURL is the page URL of one tab.
func clientURL(page, proxy, version, mode string, tab, echoes int) string {
	q := url.Values{}
	q.Set("proxy", proxy)
	q.Set("v", version)
	q.Set("mode", mode)
	q.Set("tab", strconv.Itoa(tab))
	q.Set("n", strconv.Itoa(echoes))
	return page + "/client.html?" + q.Encode()
}
