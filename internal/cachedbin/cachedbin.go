// Package cachedbin locates the binaries the project's build scripts cache for tests (the
// Consul agent, kube-apiserver): an environment variable names one, else it lies under
// $SIOPROXY_CACHE, $XDG_CACHE_HOME/sioproxy or ~/.cache/sioproxy.
package cachedbin

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir returns the cache directory: $SIOPROXY_CACHE, else $XDG_CACHE_HOME/sioproxy, else
// ~/.cache/sioproxy.
func Dir() (string, error) {
	if cache := os.Getenv("SIOPROXY_CACHE"); cache != "" {
		return cache, nil
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "sioproxy"), nil
}

// Path returns $env when set, else file under Dir. It does not check the file; see Executable.
func Path(env, file string) (string, error) {
	if bin := os.Getenv(env); bin != "" {
		return bin, nil
	}
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, file), nil
}

// Executable returns nil when path is a regular file with an execute bit, else os.Stat's error
// or one saying it is not an executable file.
func Executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
