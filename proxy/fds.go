package proxy

import "syscall"

// RaiseNoFile raises the soft RLIMIT_NOFILE of the process to its hard limit and returns both as
// they stand afterwards. A proxy holds a descriptor per client and per backend connection; the
// soft limit a shell or service manager hands down (often 1024) is the usual reason one runs out.
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
