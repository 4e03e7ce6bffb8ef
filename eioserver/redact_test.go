package eioserver

import (
	"testing"

	"sioproxy/proxy"
)

func TestSIDFieldIsTheProxysHash(t *testing.T) {
	f := sidField("lv_VI97HAXpY6yYWAAAC")
	if f.Key != "sid_hash" || f.String != proxy.SIDHash("lv_VI97HAXpY6yYWAAAC") || f.String == "lv_VI97HAXpY6yYWAAAC" {
		t.Fatalf("field %s=%q", f.Key, f.String)
	}
}
