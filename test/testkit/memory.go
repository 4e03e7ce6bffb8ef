package testkit

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcMemKB returns a field of /proc/PID/status in kB: "VmRSS" (resident now) or "VmHWM" (peak
// resident since start).
func ProcMemKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		num, _, _ := strings.Cut(strings.TrimSpace(v), " ")
		return strconv.ParseInt(num, 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// OpenFDs counts the open descriptors of a process.
func OpenFDs(pid int) (int, error) {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es), err
}
