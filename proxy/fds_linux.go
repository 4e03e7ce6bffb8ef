package proxy

import (
	"os"
	"syscall"
)

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
