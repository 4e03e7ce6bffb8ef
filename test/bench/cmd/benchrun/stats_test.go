package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want int64
		err  bool
	}{
		{"plain", "123 (nginx) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0", 175, false},
		{"spaces and parens in name", "7 (a) b (c)) R 1 2 3 4 5 6 7 8 9 10 3 4 0 0", 7, false},
		{"truncated", "7 (x) R 1 2 3", 0, true},
		{"no command", "7 x R", 0, true},
		{"not numbers", "7 (x) R 1 2 3 4 5 6 7 8 9 10 a b 0 0", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("parseStatCPU = %d, %v; want %d, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    4242 kB\nThreads: 1\n"))
	if err != nil || got != 4242 {
		t.Fatalf("parseVmRSS = %d, %v; want 4242", got, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tzombie\nState:\tZ\n")); err == nil {
		t.Fatal("parseVmRSS without VmRSS: want an error")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{math.NaN(), 5}, 5},
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) should be NaN")
	}
}

func TestMemAt(t *testing.T) {
	steps := []holdStep{
		{Sessions: 500, RSSKB: 1500, BaseKB: 1000},
		{Sessions: 2000, RSSKB: 9000, BaseKB: 1000},
		{Sessions: 4000, RSSKB: 21000, BaseKB: 1000},
	}
	tests := []struct {
		n    int
		want float64
	}{{2000, 4}, {3000, 4}, {100, 1}, {9999, 5}}
	for _, tc := range tests {
		if got := memAt(steps, tc.n); got != tc.want {
			t.Errorf("memAt(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if !math.IsNaN(memAt(nil, 1)) {
		t.Error("memAt without steps should be NaN")
	}
}

func TestCapLadder(t *testing.T) {
	tests := []struct {
		in   []int
		max  int
		want []int
	}{
		{[]int{10, 20, 30}, 100, []int{10, 20, 30}},
		{[]int{10, 20, 30}, 25, []int{10, 20, 25}},
		{[]int{10, 20, 30}, 20, []int{10, 20}},
		{[]int{10, 20, 30}, 5, []int{5}},
	}
	for _, tc := range tests {
		if got := capLadder(tc.in, tc.max); !slices.Equal(got, tc.want) {
			t.Errorf("capLadder(%v, %d) = %v, want %v", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestParseSockstat(t *testing.T) {
	in := "sockets: used 812\nTCP: inuse 40 orphan 0 tw 7 alloc 44 mem 12\nUDP: inuse 1 mem 2\n"
	got, err := parseSockstat([]byte(in))
	if err != nil || got != (sockstat{InUse: 40, Alloc: 44, TimeWait: 7, MemPages: 12}) {
		t.Fatalf("parseSockstat = %+v, %v", got, err)
	}
	for _, bad := range []string{"sockets: used 1\n", "TCP: inuse 1 mem x\n", "TCP: inuse 3\n"} {
		if _, err := parseSockstat([]byte(bad)); err == nil {
			t.Errorf("parseSockstat(%q): want an error", bad)
		}
	}
}

func TestScaleStepPerSession(t *testing.T) {
	st := scaleStep{Sessions: 1000, RSSKB: 3000, BaseKB: 500, CPU: 0.5, Window: 10 * time.Second}
	if got := st.PerSessionKB(); got != 2.5 {
		t.Errorf("PerSessionKB = %v, want 2.5", got)
	}
	if got := st.CPUPerSession(); math.Abs(got-50) > 1e-9 {
		t.Errorf("CPUPerSession = %v us, want 50", got)
	}
	steps := []scaleStep{st, {Sessions: 2000, RSSKB: 6500, BaseKB: 500, CPU: 1, Window: 10 * time.Second}}
	if got := flatness(steps, scaleStep.PerSessionKB); math.Abs(got-1.2) > 1e-9 {
		t.Errorf("flatness = %v, want 1.2", got)
	}
	if !math.IsNaN(flatness(steps[:1], scaleStep.PerSessionKB)) {
		t.Error("flatness of one step should be NaN")
	}
	if v := flatVerdict(1.5); strings.HasPrefix(v, "**met**") {
		t.Errorf("flatVerdict(1.5) = %q", v)
	}
	if v := flatVerdict(0.5); !strings.HasPrefix(v, "**met**") {
		t.Errorf("flatVerdict(0.5) = %q", v)
	}
	if countVerdict(0, 3000) != "**met**" || countVerdict(2, 3000) == "**met**" || countVerdict(0, 0) != "not measured" {
		t.Error("countVerdict")
	}
}

func TestParseVariants(t *testing.T) {
	vs, err := parseVariants("base=bin/a; pgo=bin/b:GOGC=50:GODEBUG=x=1")
	if err != nil || len(vs) != 2 || vs[1].Name != "pgo" || vs[1].Bin != "bin/b" || len(vs[1].Env) != 2 || vs[1].Env[1] != "GODEBUG=x=1" {
		t.Fatalf("parseVariants = %+v, %v", vs, err)
	}
	for _, bad := range []string{"", "a=bin", "a=bin;b", "a=bin;b=bin:NOEQ", "=bin;b=bin"} {
		if _, err := parseVariants(bad); err == nil {
			t.Errorf("parseVariants(%q): want an error", bad)
		}
	}
}

func TestParseSlab(t *testing.T) {
	in := "slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize>\nTCP 10 13 2368 13 8 : tunables 0 0 0\n" +
		"eventpoll_epi 100 128 128 32 1 : x\ndentry 5 9 192 21 1 : x\nsock_inode_cache 2 3 832 19 4\n"
	if got, want := parseSlab([]byte(in)), int64(10*2368+100*128+2*832); got != want {
		t.Fatalf("parseSlab = %d, want %d", got, want)
	}
}
