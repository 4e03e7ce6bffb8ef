package sticky

import (
	"bytes"
	"testing"
)

func TestTransportString(t *testing.T) {
	for tr, want := range map[Transport]string{
		TransportUnknown: "unknown", TransportPolling: "polling", TransportWebSocket: "websocket", 9: "unknown",
	} {
		if got := tr.String(); got != want {
			t.Errorf("Transport(%d).String() = %q, want %q", tr, got, want)
		}
	}
}

func TestClassifierMatch(t *testing.T) {
	tests := []struct {
		name     string
		prefixes []string
		path     string
		want     bool
	}{
		{"default prefix", nil, "/socket.io/", true},
		{"default prefix deeper", nil, "/socket.io/x", true},
		{"default needs slash", nil, "/socket.io", false},
		{"default other", nil, "/socket.iox/", false},
		{"root", nil, "/", false},
		{"empty path", nil, "", false},
		{"empty strings ignored", []string{"", ""}, "/socket.io/", true},
		{"bare prefix equal", []string{"/engine.io"}, "/engine.io", true},
		{"bare prefix slash", []string{"/engine.io"}, "/engine.io/", true},
		{"bare prefix deeper", []string{"/engine.io"}, "/engine.io/abc", true},
		{"bare prefix no boundary", []string{"/engine.io"}, "/engine.iox", false},
		{"bare prefix shorter path", []string{"/engine.io"}, "/engine", false},
		{"several first", []string{"/a/", "/b"}, "/a/x", true},
		{"several second", []string{"/a/", "/b"}, "/b", true},
		{"several none", []string{"/a/", "/b"}, "/socket.io/", false},
		{"slash prefix matches all", []string{"/"}, "/anything", true},
		{"case sensitive", nil, "/Socket.IO/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClassifier(tt.prefixes)
			if got := c.Match([]byte(tt.path)); got != tt.want {
				t.Errorf("Match(%q) with %q = %v, want %v", tt.path, tt.prefixes, got, tt.want)
			}
			info := c.Classify([]byte(tt.path), []byte("EIO=4"), false)
			if info.EngineIO != tt.want {
				t.Errorf("Classify(%q).EngineIO = %v, want %v", tt.path, info.EngineIO, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		query   string
		upgrade bool
		want    Info // SID compared as string below
		wantSID string
	}{
		{
			name: "v4 polling handshake", path: "/socket.io/", query: "EIO=4&transport=polling&t=OX8oqUE",
			want: Info{EngineIO: true, EIO: 4, Transport: TransportPolling, SIDStart: -1},
		},
		{
			name: "v4 polling with sid", path: "/socket.io/", query: "EIO=4&transport=polling&t=OX8oqUE&sid=lv_VI97HAXpY6yYWAAAC",
			want:    Info{EngineIO: true, EIO: 4, Transport: TransportPolling, SIDStart: 38},
			wantSID: "lv_VI97HAXpY6yYWAAAC",
		},
		{
			name: "websocket upgrade", path: "/socket.io/", query: "EIO=4&transport=websocket&sid=abc", upgrade: true,
			want:    Info{EngineIO: true, EIO: 4, Transport: TransportWebSocket, SIDStart: 30, Upgrade: true},
			wantSID: "abc",
		},
		{
			name: "leading question mark", path: "/socket.io/", query: "?sid=abc&EIO=3",
			want:    Info{EngineIO: true, EIO: 3, SIDStart: 5},
			wantSID: "abc",
		},
		{
			name: "sid first", path: "/socket.io/", query: "sid=xyz",
			want:    Info{EngineIO: true, SIDStart: 4},
			wantSID: "xyz",
		},
		{
			name: "first occurrence wins", path: "/socket.io/", query: "EIO=3&EIO=4&transport=websocket&transport=polling&sid=a&sid=b",
			want:    Info{EngineIO: true, EIO: 3, Transport: TransportWebSocket, SIDStart: 54},
			wantSID: "a",
		},
		{
			name: "invalid first EIO is not replaced", path: "/socket.io/", query: "EIO=5&EIO=4",
			want: Info{EngineIO: true, SIDStart: -1},
		},
		{
			name: "v3 jsonp", path: "/socket.io/", query: "EIO=3&transport=polling&j=0",
			want: Info{EngineIO: true, EIO: 3, Transport: TransportPolling, JSONP: true, SIDStart: -1},
		},
		{
			name: "j without value", path: "/socket.io/", query: "j&EIO=3",
			want: Info{EngineIO: true, EIO: 3, JSONP: true, SIDStart: -1},
		},
		{
			name: "empty sid is a handshake", path: "/socket.io/", query: "EIO=4&sid=&transport=polling",
			want: Info{EngineIO: true, EIO: 4, Transport: TransportPolling, SIDStart: -1},
		},
		{
			name: "sid key without value", path: "/socket.io/", query: "sid&EIO=4",
			want: Info{EngineIO: true, EIO: 4, SIDStart: -1},
		},
		{
			name: "percent-encoded sid kept as sent", path: "/socket.io/", query: "sid=ab%2Ecd&EIO=4",
			want:    Info{EngineIO: true, EIO: 4, SIDStart: 4},
			wantSID: "ab%2Ecd",
		},
		{
			name: "tagged sid", path: "/socket.io/", query: "EIO=4&transport=polling&sid=AbCd.lv_VI97HAXpY6yYWAAAC",
			want:    Info{EngineIO: true, EIO: 4, Transport: TransportPolling, SIDStart: 28},
			wantSID: "AbCd.lv_VI97HAXpY6yYWAAAC",
		},
		{
			name: "unknown transport and EIO", path: "/socket.io/", query: "EIO=44&transport=webtransport",
			want: Info{EngineIO: true, SIDStart: -1},
		},
		{
			name: "similar keys ignored", path: "/socket.io/", query: "sids=1&xsid=2&eio=4&Transport=polling&jj=1",
			want: Info{EngineIO: true, SIDStart: -1},
		},
		{
			name: "empty pairs", path: "/socket.io/", query: "&&sid=q&&",
			want:    Info{EngineIO: true, SIDStart: 6},
			wantSID: "q",
		},
		{
			name: "empty query", path: "/socket.io/", query: "",
			want: Info{EngineIO: true, SIDStart: -1},
		},
		{
			name: "not engine.io", path: "/api/", query: "EIO=4&sid=abc", upgrade: true,
			want: Info{SIDStart: -1, Upgrade: true},
		},
	}
	c := NewClassifier(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := []byte(tt.query)
			got := c.Classify([]byte(tt.path), q, tt.upgrade)
			gotSID := got.SID
			got.SID = nil
			if !sameInfo(got, tt.want) {
				t.Errorf("Classify(%q, %q) = %+v, want %+v", tt.path, tt.query, got, tt.want)
			}
			if string(gotSID) != tt.wantSID {
				t.Errorf("SID = %q, want %q", gotSID, tt.wantSID)
			}
			if tt.wantSID == "" && gotSID != nil {
				t.Errorf("SID = %q, want nil", gotSID)
			}
			if got.SIDStart >= 0 && !bytes.Equal(q[got.SIDStart:got.SIDStart+len(gotSID)], gotSID) {
				t.Errorf("SIDStart %d does not point at the sid in %q", got.SIDStart, tt.query)
			}
			if cap(gotSID) != len(gotSID) {
				t.Errorf("SID capacity %d exceeds its length %d: appends would clobber the query", cap(gotSID), len(gotSID))
			}
		})
	}
}

func TestClassifyAllocs(t *testing.T) {
	c := NewClassifier([]string{"/engine.io", "/socket.io/"})
	path := []byte("/socket.io/")
	query := []byte("EIO=4&transport=polling&t=OX8oqUE&sid=AbCd.lv_VI97HAXpY6yYWAAAC&j=1")
	var info Info
	allocs := testing.AllocsPerRun(1000, func() { info = c.Classify(path, query, false) })
	if allocs != 0 {
		t.Errorf("Classify allocates %v times per call, want 0", allocs)
	}
	if string(info.SID) != "AbCd.lv_VI97HAXpY6yYWAAAC" {
		t.Errorf("SID = %q", info.SID)
	}
}

// sameInfo compares two Info values except SID.
func sameInfo(a, b Info) bool {
	return a.EngineIO == b.EngineIO && a.EIO == b.EIO && a.Transport == b.Transport &&
		a.SIDStart == b.SIDStart && a.JSONP == b.JSONP && a.Upgrade == b.Upgrade
}
