package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// netnsEnv marks the copy of a test binary that runs inside the network namespace that
// InNetns made.
const netnsEnv = "SIOPROXY_TEST_NETNS"

// InNetns runs the test binary again inside a network namespace of its own (`unshare -n`:
// no interface but a loopback, no route out) and returns its exit code with child false;
// call it first thing in TestMain and exit with that code. In the copy inside the
// namespace it brings lo up, gives it addrs (each as /32, or a CIDR), and returns child
// true: the tests then run there, and every process they start (servers, the proxy,
// clients) lives in that namespace, so addresses outside loopback (10.x, which some
// systems refuse on loopback) can be used without reaching any other host.
//
// The parent builds ./cmd/sioproxy first (into $SIOPROXY_BIN, unless set) because the
// namespace has no network for the Go toolchain.
func InNetns(addrs ...string) (code int, child bool) {
	if os.Getenv(netnsEnv) != "" {
		if err := setupNetns(addrs); err != nil {
			fmt.Fprintln(os.Stderr, "netns:", err)
			return 1, true
		}
		return 0, true
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		fmt.Fprintln(os.Stderr, "netns: unshare not found (util-linux); it makes the network namespace the test runs in")
		return 1, false
	}
	env := append(os.Environ(), netnsEnv+"=1")
	if os.Getenv("SIOPROXY_BIN") == "" {
		dir, err := os.MkdirTemp("", "sioproxy-netns-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "netns:", err)
			return 1, false
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "sioproxy")
		if err := buildProxyTo(bin); err != nil {
			fmt.Fprintln(os.Stderr, "netns:", err)
			return 1, false
		}
		env = append(env, "SIOPROXY_BIN="+bin)
	}
	args := []string{"--net"}
	if os.Geteuid() != 0 {
		args = append(args, "--map-root-user") // a user namespace makes the network namespace ours
	}
	cmd := exec.Command(unshare, append(append(args, "--", os.Args[0]), os.Args[1:]...)...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, false
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode(), false
	}
	fmt.Fprintf(os.Stderr, "netns: unshare --net: %v (it needs root or unprivileged user namespaces)\n", err)
	return 1, false
}

// setupNetns checks that the process is in a namespace of its own and configures lo.
func setupNetns(addrs []string) error {
	self, err1 := os.Readlink("/proc/self/ns/net")
	parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", os.Getppid()))
	if err1 != nil || err2 != nil || self == parent {
		return fmt.Errorf("%s is set but this process shares its network namespace with its parent (%s)", netnsEnv, self)
	}
	var batch strings.Builder
	batch.WriteString("link set lo up\n")
	for _, a := range addrs {
		if !strings.Contains(a, "/") {
			a += "/32"
		}
		fmt.Fprintf(&batch, "addr add %s dev lo\n", a)
	}
	cmd := exec.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -batch: %v: %s", err, out)
	}
	return nil
}

// buildProxyTo builds ./cmd/sioproxy of the module the test runs in into bin.
func buildProxyTo(bin string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	build := exec.Command("go", "build", "-o", bin, "./cmd/sioproxy")
	build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/sioproxy: %w", err)
	}
	return nil
}
