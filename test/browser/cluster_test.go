package browser

import (
	"testing"

	"sioproxy/test/testkit"
)

// startProxy starts sioproxy in front of bs and returns its base URL.
func startProxy(t *testing.T, bs []*testkit.Backend) string {
	t.Helper()
	args := []string{"-log-level", "warn"}
	for _, b := range bs {
		args = append(args, "-backend", b.URL())
	}
	return testkit.StartProxy(t, testkit.ProxySpec{Args: args}).URL()
}
