package proxy

import (
	"os"
	"syscall"
)

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

// OpenFDs returns how many descriptors the process has open, or -1 when it cannot tell. Since
// Linux 6.2 the size of /proc/self/fd is that number (one stat, no directory walk); older kernels
// report 0 there, and the directory is counted instead.
func OpenFDs() int {
	var st syscall.Stat_t
	if syscall.Stat("/proc/self/fd", &st) == nil && st.Size > 0 {
		return int(st.Size)
	}
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return -1
	}
	return len(names) - 1 // the directory's own descriptor
}
