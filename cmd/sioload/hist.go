package main

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// histSubBits sets the histogram's precision: each power-of-two range is cut into 2^histSubBits
// linear buckets, so a bucket is at most 1/128 of its values wide and the reported midpoint is
// within 0.4% of any value in it.
const histSubBits = 7

const (
	histSub     = 1 << histSubBits             // buckets per power of two
	histBuckets = (64 - histSubBits) * histSub // covers every non-negative int64
)

// histogram is an HDR-style log-linear histogram of non-negative int64 values (nanoseconds
// here). Values below 2*histSub are exact; above, buckets grow with the value. Record is
// lock-free and safe for concurrent use; readers see a consistent-enough view while it runs.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Int64 // valid when n > 0
	max    atomic.Int64
}

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < 2*histSub {
		return int(u)
	}
	shift := bits.Len64(u) - (histSubBits + 1)
	return shift*histSub + int(u>>uint(shift))
}

// bucketRange returns the lowest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < 2*histSub {
		return int64(i), 1
	}
	shift := i/histSub - 1
	m := int64(i - shift*histSub)
	return m << uint(shift), 1 << uint(shift)
}

// Record adds one value; negative values count as 0.
func (h *histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for cur := h.min.Load(); v < cur && !h.min.CompareAndSwap(cur, v); cur = h.min.Load() {
	}
	for cur := h.max.Load(); v > cur && !h.max.CompareAndSwap(cur, v); cur = h.max.Load() {
	}
}

// Count returns the number of recorded values.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest recorded value (0 when empty).
func (h *histogram) Max() int64 { return h.max.Load() }

// Mean returns the arithmetic mean (0 when empty).
func (h *histogram) Mean() float64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns the value at quantile q in [0, 1]: the midpoint of the bucket holding the
// ceil(q*n)-th smallest value, clamped to the recorded min and max. 0 when empty.
func (h *histogram) Quantile(q float64) int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, w := bucketRange(i)
			v := lo + (w-1)/2
			return min(max(v, h.min.Load()), h.max.Load())
		}
	}
	return h.max.Load() // counts raced ahead of n
}
