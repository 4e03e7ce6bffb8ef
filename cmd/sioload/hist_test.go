package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	values := []int64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<20 + 12345, 1 << 40, math.MaxInt64}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, r.Int64N(1<<uint(r.IntN(62)+1)))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, i)
		}
		lo, w := bucketRange(i)
		if v < lo || v-lo >= w {
			t.Fatalf("value %d in bucket %d = [%d, %d+%d)", v, i, lo, lo, w)
		}
		if lo >= 2*histSub && float64(w)/float64(lo) > 1.0/histSub {
			t.Fatalf("bucket %d too wide: [%d, +%d)", i, lo, w)
		}
	}
	for i := 1; i < histBuckets; i++ { // contiguous and increasing
		lo0, w0 := bucketRange(i - 1)
		lo1, _ := bucketRange(i)
		if lo0+w0 != lo1 {
			t.Fatalf("gap between buckets %d and %d: %d+%d != %d", i-1, i, lo0, w0, lo1)
		}
	}
}

// TestQuantileAccuracy compares quantiles with the exact ones of the same samples.
func TestQuantileAccuracy(t *testing.T) {
	dists := map[string]func(r *rand.Rand) int64{
		"lognormal latency": func(r *rand.Rand) int64 { return int64(math.Exp(r.NormFloat64()*1.2 + 13)) }, // ~0.4 ms median
		"uniform":           func(r *rand.Rand) int64 { return r.Int64N(5_000_000_000) },
		"bimodal":           func(r *rand.Rand) int64 { return []int64{200_000, 90_000_000}[r.IntN(2)] + r.Int64N(1000) },
		"small exact":       func(r *rand.Rand) int64 { return r.Int64N(200) },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 11))
			h := newHistogram()
			vals := make([]int64, 40_000)
			for i := range vals {
				vals[i] = gen(r)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0, 0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(int(math.Ceil(q*float64(len(vals)))), 1)
				exact := vals[rank-1]
				got := h.Quantile(q)
				if diff := math.Abs(float64(got - exact)); diff > 0.01*float64(exact) {
					t.Errorf("q%v = %d, exact %d (off by %.3f%%)", q, got, exact, 100*diff/float64(exact))
				}
			}
			if h.Count() != uint64(len(vals)) || h.Max() != vals[len(vals)-1] {
				t.Errorf("Count %d Max %d, want %d %d", h.Count(), h.Max(), len(vals), vals[len(vals)-1])
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	h := newHistogram()
	if h.Quantile(0.5) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	h.Record(-5) // clamped to 0
	h.Record(1000)
	if h.Quantile(0) != 0 || h.Quantile(1) != 1000 || h.Mean() != 500 {
		t.Fatalf("q0 %d q1 %d mean %v", h.Quantile(0), h.Quantile(1), h.Mean())
	}
	if h.Quantile(-1) != 0 || h.Quantile(2) != 1000 {
		t.Fatal("quantiles outside [0,1] must clamp")
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := newHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(int64(g*1000 + i))
			}
		}()
	}
	wg.Wait()
	if h.Count() != 8000 || h.Max() != 7999 || h.Quantile(0) != 0 {
		t.Fatalf("Count %d Max %d Min %d", h.Count(), h.Max(), h.Quantile(0))
	}
}
