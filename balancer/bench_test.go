package balancer

import (
	"strconv"
	"testing"
)

// BenchmarkPlace measures one placement per policy and pool size, with uneven weights and loads.
// Target: 0 allocs/op.
func BenchmarkPlace(b *testing.B) {
	for _, name := range testPolicyNames {
		for _, n := range []int{3, 30, 300} {
			b.Run(name+"/"+strconv.Itoa(n), func(b *testing.B) {
				p := testPolicy(name)
				w := make([]int, n)
				for i := range w {
					w[i] = 1 + i%3
				}
				bal := New(p)
				bal.Update(specs(w...))
				for i, be := range bal.Snapshot().Backends {
					be.Sessions.Store(int64(100 + i*7%50))
				}
				pick := &Pick{HasKey: true}
				now := int64(1)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					pick.Key, pick.Now = mix64(uint64(i)), now
					if bal.Place(pick) == nil {
						b.Fatal("nil")
					}
				}
			})
		}
	}
}

// BenchmarkPlaceParallel measures contention: Place from all Ps on one Balancer.
func BenchmarkPlaceParallel(b *testing.B) {
	for _, name := range testPolicyNames {
		b.Run(name, func(b *testing.B) {
			p := testPolicy(name)
			bal := New(p)
			bal.Update(specs(1, 2, 3, 1, 2, 3, 1, 2, 3, 1))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				pick := &Pick{HasKey: true}
				var i uint64
				for pb.Next() {
					i++
					pick.Key, pick.Now = mix64(i), 1
					if bal.Place(pick) == nil {
						b.Fatal("nil")
					}
				}
			})
		})
	}
}
