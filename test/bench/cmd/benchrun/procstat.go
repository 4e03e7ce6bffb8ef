package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat (100 on Linux everywhere).
const clockTicks = 100

// usage is what /proc says about a group of processes at one instant.
type usage struct {
	CPU   float64 // utime+stime of all the processes (threads included), seconds
	RSSKB int64   // sum of VmRSS, KiB
}

// readUsage sums CPU and resident memory over pids.
func readUsage(pids []int) (usage, error) {
	var u usage
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return u, err
		}
		ticks, err := parseStatCPU(stat)
		if err != nil {
			return u, fmt.Errorf("pid %d: %w", pid, err)
		}
		u.CPU += float64(ticks) / clockTicks
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return u, err
		}
		if rss, err := parseVmRSS(status); err == nil { // a zombie has no VmRSS: nothing resident
			u.RSSKB += rss
		}
	}
	return u, nil
}

// parseStatCPU returns utime+stime (fields 14 and 15) of a /proc/PID/stat line. The command name
// (field 2) is in parentheses and may hold spaces, so fields are counted after the last ')'.
func parseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command field")
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command", len(f))
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: bad utime/stime %q %q", f[11], f[12])
	}
	return ut + st, nil
}

// parseVmRSS returns the VmRSS line of /proc/PID/status in KiB.
func parseVmRSS(status []byte) (int64, error) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return 0, fmt.Errorf("status: no VmRSS")
}
