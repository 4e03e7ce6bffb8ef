//go:build !linux

package proxy

import "syscall"

// RaiseNoFile raises the soft RLIMIT_NOFILE of the process to its hard limit and returns both as
// they stand afterwards.
func RaiseNoFile() (soft, hard uint64, err error) {
	var r syscall.Rlimit
	if err = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	if r.Cur < r.Max {
		want := r
		want.Cur = r.Max
		if err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			r = want
		}
	}
	return r.Cur, r.Max, err
}

// NoFile returns the soft RLIMIT_NOFILE of the process (0 when unknown).
func NoFile() uint64 {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	return r.Cur
}

// OpenFDs returns -1: counting open descriptors is implemented on Linux only, so the descriptor
// reserve is not enforced elsewhere.
func OpenFDs() int { return -1 }
