package balancer

import (
	"strings"
	"testing"
)

// FuzzUpdate builds snapshots from arbitrary spec lists and checks the snapshot invariants and
// that every policy places only on available candidates.
func FuzzUpdate(f *testing.F) {
	f.Add("a:1:0,b:2:0,c:0:1", uint64(1))
	f.Add("a:5:0,a:1:0,b:-1:0,:3:0", uint64(7))
	f.Add("x:1:9,y:1000000000:0", uint64(0))
	f.Fuzz(func(t *testing.T, in string, key uint64) {
		var sp []Spec
		for _, part := range strings.Split(in, ",") {
			fs := strings.Split(part, ":")
			s := Spec{ID: fs[0]}
			if len(fs) > 1 {
				for _, c := range fs[1] {
					if c >= '0' && c <= '9' {
						s.Weight = s.Weight*10 + int(c-'0')
						if s.Weight > 1<<40 {
							break
						}
					}
				}
				if strings.HasPrefix(fs[1], "-") {
					s.Weight = -s.Weight
				}
			}
			if len(fs) > 2 && fs[2] != "" {
				s.State = State(fs[2][0] - '0')
			}
			sp = append(sp, s)
			if len(sp) > 64 {
				break
			}
		}
		b := New(nil, WithTagger(func(id string) string {
			if len(id) < 2 {
				return id
			}
			return id[:2]
		}))
		b.Update(sp)
		s := b.Snapshot()
		seen := map[string]bool{}
		for i, be := range s.Backends {
			if be.Index != i || seen[be.ID] || s.ByID(be.ID) != be || b.Stats(be.ID) != be.Stats {
				t.Fatalf("backend %d %+v: bad index, duplicate or lookup", i, be.Spec)
			}
			if i > 0 && s.Backends[i-1].ID >= be.ID {
				t.Fatal("not sorted by ID")
			}
			if be.Weight < 0 || be.Weight > maxWeight || be.State > Draining {
				t.Fatalf("not normalized: %+v", be.Spec)
			}
			if be.Tag != "" && s.ByTag([]byte(be.Tag)) != be {
				t.Fatalf("tag %q does not resolve to its backend", be.Tag)
			}
			seen[be.ID] = true
		}
		for _, name := range testPolicyNames {
			p := testPolicy(name)
			b.SetPolicy(p)
			pick := &Pick{Key: key, HasKey: key%2 == 0}
			be, r := b.PlaceWithReason(pick)
			if (be == nil) != (r != OK) {
				t.Fatalf("%s: backend %v with reason %v", name, be, r)
			}
			if be == nil && len(s.Candidates()) > 0 {
				t.Fatalf("%s: nil with %d candidates", name, len(s.Candidates()))
			}
			if be != nil && (be.State != Active || be.Weight <= 0 || s.ByID(be.ID) != be) {
				t.Fatalf("%s: placed on a non-candidate %+v", name, be.Spec)
			}
		}
	})
}
