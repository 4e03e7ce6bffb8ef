package health

import (
	"testing"

	"sioproxy/balancer"
	"sioproxy/configs"
)

func TestStaticSpecs(t *testing.T) {
	zero := 0
	got := StaticSpecs([]configs.Backend{
		{URL: "http://10.0.0.1:3000"},
		{ID: "b", URL: "https://10.0.0.2:3443", Weight: &zero, Drain: true},
	}, "static")
	want := []balancer.Spec{
		{ID: "http://10.0.0.1:3000", Addr: "10.0.0.1:3000", Weight: 1, State: balancer.Active, Source: "static"},
		{ID: "b", Addr: "10.0.0.2:3443", TLS: true, Weight: 0, State: balancer.Draining, Source: "static"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("spec %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
