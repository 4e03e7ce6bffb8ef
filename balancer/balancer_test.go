package balancer

import (
	"sync"
	"testing"
	"time"
)

func TestStringers(t *testing.T) {
	tests := []struct{ got, want string }{
		{Active.String(), "active"},
		{Draining.String(), "draining"},
		{State(9).String(), "unknown"},
		{OK.String(), "ok"},
		{NoBackends.String(), "no_backends"},
		{AllFull.String(), "all_full"},
		{Reason(9).String(), "unknown"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// testPolicyNames and testPolicy give every policy under the names the config uses.
var testPolicyNames = []string{"round_robin", "least_sessions", "p2c", "hash"}

func testPolicy(name string) Policy {
	switch name {
	case "round_robin":
		return NewRoundRobin()
	case "least_sessions":
		return NewLeastSessions()
	case "hash":
		return NewHash(0.25)
	}
	return NewP2C()
}

func TestUpdateTagsAndLookups(t *testing.T) {
	tags := map[string]string{"a": "AAA", "b": "XYZ", "c": "XYZ", "d": ""}
	b := New(nil, WithTagger(func(id string) string { return tags[id] }))
	b.Update(specs(1, 1, 1, 1))
	s := b.Snapshot()
	tests := []struct {
		id, tag string
	}{{"a", "AAA"}, {"b", ""}, {"c", ""}, {"d", ""}}
	for _, tt := range tests {
		be := s.ByID(tt.id)
		if be == nil || be.Tag != tt.tag {
			t.Fatalf("%s: got %+v, want tag %q", tt.id, be, tt.tag)
		}
		if s.Backends[be.Index] != be {
			t.Fatalf("%s: Index %d does not point back", tt.id, be.Index)
		}
	}
	if s.ByTag([]byte("AAA")) != s.ByID("a") || s.ByTag([]byte("XYZ")) != nil || s.ByTag(nil) != nil {
		t.Fatal("ByTag: collided tag must not resolve, unique tag must")
	}
	if s.ByID("zz") != nil {
		t.Fatal("ByID of an unknown id")
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.ByTag([]byte("AAA")) }); n != 0 {
		t.Fatalf("ByTag allocates %v", n)
	}
}

func TestUpdateNormalizes(t *testing.T) {
	b := New(nil)
	b.Update([]Spec{{ID: "b", Weight: -3}, {ID: "a", Weight: 1, Addr: "first"}, {ID: "a", Weight: 1, Addr: "second"}, {ID: "c", Weight: 1 << 30, State: 7}})
	s := b.Snapshot()
	if len(s.Backends) != 3 || s.Backends[0].ID != "a" || s.Backends[0].Addr != "first" {
		t.Fatalf("want sorted, first duplicate kept: %+v", s.Backends)
	}
	if s.ByID("b").Weight != 0 || s.ByID("c").Weight != maxWeight || s.ByID("c").State != Draining {
		t.Fatalf("clamping: b=%+v c=%+v", s.ByID("b").Spec, s.ByID("c").Spec)
	}
	if len(s.Candidates()) != 1 {
		t.Fatalf("candidates %d, want 1", len(s.Candidates()))
	}
}

func TestUpdateIdenticalSkipped(t *testing.T) {
	b := New(nil)
	empty := b.Snapshot()
	b.Update(nil)
	if b.Snapshot() != empty {
		t.Fatal("empty update swapped the empty snapshot")
	}
	sp := specs(1, 2, 3)
	b.Update(sp)
	first := b.Snapshot()
	b.Update(specs(1, 2, 3))
	b.Update([]Spec{sp[2], sp[0], sp[1]})
	if b.Snapshot() != first {
		t.Fatal("identical update swapped the snapshot")
	}
	sp[1].Weight = 5
	b.Update(sp)
	if b.Snapshot() == first || b.Snapshot().ByID("b").Weight != 5 {
		t.Fatal("changed update not published")
	}
}

func TestStatsSurviveUpdate(t *testing.T) {
	b := New(nil)
	b.Update(specs(1, 1))
	a := b.Snapshot().ByID("a")
	a.Sessions.Add(7)
	bb := b.Snapshot().ByID("b")

	b.Update(specs(3, 1, 1)) // a changes weight, c joins
	s := b.Snapshot()
	if s.ByID("a").Stats != a.Stats || s.ByID("a").Sessions.Load() != 7 || b.Stats("a") != a.Stats {
		t.Fatal("a lost its Stats across Update")
	}
	b.Update(specs(1)) // b and c leave; b is idle, a stays
	if b.Stats("b") != nil || b.Stats("c") != nil {
		t.Fatal("idle departed backends must be forgotten")
	}
	// A departed backend that still has sessions keeps its Stats, and gets them back on return.
	a.Sessions.Store(0)
	b.Update(specs(1, 1))
	nb := b.Snapshot().ByID("b")
	if nb.Stats == bb.Stats {
		t.Fatal("b came back with stale idle Stats")
	}
	nb.Tunnels.Add(1)
	b.Update(specs(1))
	if b.Stats("b") != nb.Stats {
		t.Fatal("busy departed backend lost its Stats")
	}
	b.Update(specs(1, 1))
	if b.Snapshot().ByID("b").Stats != nb.Stats || b.Snapshot().ByID("b").Tunnels.Load() != 1 {
		t.Fatal("returning backend did not get its Stats back")
	}
	if b.Stats("zz") != nil {
		t.Fatal("Stats of an unknown id")
	}
}

func TestPlaceReasons(t *testing.T) {
	b, c := newTest(t, NewP2C(), specs(1, 1))
	s := b.Snapshot()
	tests := []struct {
		name    string
		pick    *Pick
		want    Reason
		wantNil bool
	}{
		{"ok", c.pick(), OK, false},
		{"one excluded", c.pick(s.ByID("a")), OK, false},
		{"all excluded", c.pick(s.ByID("a"), s.ByID("b")), NoBackends, true},
	}
	for _, tt := range tests {
		be, r := b.PlaceWithReason(tt.pick)
		if r != tt.want || (be == nil) != tt.wantNil {
			t.Fatalf("%s: got %v %v", tt.name, be, r)
		}
	}
	empty := New(nil)
	if be, r := empty.PlaceWithReason(&Pick{}); be != nil || r != NoBackends {
		t.Fatalf("empty balancer: %v %v", be, r)
	}
	drain := New(nil)
	sp := specs(1)
	sp[0].State = Draining
	drain.Update(sp)
	if be, r := drain.PlaceWithReason(&Pick{}); be != nil || r != NoBackends {
		t.Fatalf("draining only: %v %v", be, r)
	}
}

func TestPlaceFillsNowAndCountsHandshakes(t *testing.T) {
	b, c := newTest(t, NewRoundRobin(), specs(1))
	p := &Pick{}
	be := b.Place(p)
	if p.Now != c.Nanos() {
		t.Fatalf("Now = %d, want the injected clock %d", p.Now, c.Nanos())
	}
	if be.Handshakes.Load() != 1 {
		t.Fatalf("handshakes %d, want 1", be.Handshakes.Load())
	}
}

func TestSetPolicy(t *testing.T) {
	b, c := newTest(t, nil, specs(1, 1))
	if _, ok := b.Policy().(P2C); !ok {
		t.Fatalf("default policy %T", b.Policy())
	}
	b.SetPolicy(NewRoundRobin())
	if got := placeIDs(b, c, 4); got != "abab" {
		t.Fatalf("after SetPolicy(round robin): %q", got)
	}
}

func TestSlowStartRamp(t *testing.T) {
	const win = 30 * time.Second
	b, c := newTest(t, nil, specs(10, 10), WithSlowStart(win))
	s := b.Snapshot()
	if w := s.EffectiveWeight(s.ByID("a"), c.Nanos()); w != 10*rampFull {
		t.Fatalf("first populated snapshot must not ramp: %d", w)
	}
	b.Update(specs(10, 10, 10)) // c joins
	s = b.Snapshot()
	cb := s.ByID("c")
	tests := []struct {
		at   time.Duration
		want int64
	}{
		{0, 10 * rampMin},               // floor: 10%
		{2 * time.Second, 10 * rampMin}, // 6.7% < floor
		{15 * time.Second, 10 * rampFull / 2},
		{27 * time.Second, 10 * (rampFull * 27 / 30)},
		{30 * time.Second, 10 * rampFull},
		{time.Hour, 10 * rampFull},
	}
	start := c.Nanos()
	for _, tt := range tests {
		if got := s.EffectiveWeight(cb, start+int64(tt.at)); got != tt.want {
			t.Errorf("at %v: effective weight %d, want %d", tt.at, got, tt.want)
		}
	}
	// Draining -> Active ramps again.
	c.Advance(time.Hour)
	sp := specs(10, 10, 10)
	sp[0].State = Draining
	b.Update(sp)
	b.Update(specs(10, 10, 10))
	s = b.Snapshot()
	if got := s.EffectiveWeight(s.ByID("a"), c.Nanos()+int64(15*time.Second)); got != 10*rampFull/2 {
		t.Fatalf("back from draining, halfway: %d", got)
	}
	// Weight 0 -> >0 too.
	c.Advance(time.Hour)
	b.Update(specs(10, 0, 10))
	b.Update(specs(10, 10, 10))
	s = b.Snapshot()
	if got := s.EffectiveWeight(s.ByID("b"), c.Nanos()); got != 10*rampMin {
		t.Fatalf("back from weight 0: %d", got)
	}
	// Off.
	b2, c2 := newTest(t, nil, specs(1), WithSlowStart(0))
	b2.Update(specs(1, 1))
	if got := b2.Snapshot().EffectiveWeight(b2.Snapshot().ByID("b"), c2.Nanos()); got != rampFull {
		t.Fatalf("slow start off: %d", got)
	}
}

func TestEjection(t *testing.T) {
	b, c := newTest(t, NewRoundRobin(), specs(1, 1, 1, 1), WithEjection(5*time.Second, 0.5), WithSlowStart(10*time.Second))
	s := b.Snapshot()
	a, bb, cc := s.ByID("a"), s.ByID("b"), s.ByID("c")
	b.ReportFailure(a)
	b.ReportFailure(bb)
	b.ReportFailure(cc) // cap: 50% of 4 = 2 already ejected
	now := c.Nanos()
	if !a.Ejected(now) || !bb.Ejected(now) || cc.Ejected(now) {
		t.Fatalf("ejected a=%v b=%v c=%v, want true true false", a.Ejected(now), bb.Ejected(now), cc.Ejected(now))
	}
	if a.Failures.Load() != 1 || cc.Failures.Load() != 1 {
		t.Fatal("failures not counted")
	}
	if got := placeIDs(b, c, 4); got != "cdcd" {
		t.Fatalf("with a,b ejected: %q", got)
	}
	b.ReportFailure(a) // already ejected: not extended
	if a.EjectedUntil() != now+int64(5*time.Second) {
		t.Fatalf("ejection extended: %d", a.EjectedUntil()-now)
	}
	c.Advance(5 * time.Second)
	if a.Ejected(c.Nanos()) {
		t.Fatal("ejection did not end after the cooldown")
	}
	// The ejection's end starts a slow-start ramp.
	if got := s.EffectiveWeight(a, c.Nanos()+int64(5*time.Second)); got != rampFull/2 {
		t.Fatalf("after ejection, halfway through the ramp: %d", got)
	}
	// Now c can be ejected.
	b.ReportFailure(cc)
	if !cc.Ejected(c.Nanos()) {
		t.Fatal("c not ejected once the cap allowed it")
	}
}

func TestEjectionCapSingleBackend(t *testing.T) {
	b, c := newTest(t, nil, specs(1))
	be := b.Snapshot().ByID("a")
	b.ReportFailure(be)
	if be.Ejected(c.Nanos()) {
		t.Fatal("the only backend must not be ejected with a 50% cap")
	}
	b.ReportFailure(nil) // no panic
	b.ReportSuccess(nil)
}

func TestEjectionThresholdAndSuccess(t *testing.T) {
	b, c := newTest(t, nil, specs(1, 1), WithFailureThreshold(3), WithEjection(time.Second, 1))
	be := b.Snapshot().ByID("a")
	b.ReportFailure(be)
	b.ReportFailure(be)
	b.ReportSuccess(be) // streak cleared
	b.ReportFailure(be)
	b.ReportFailure(be)
	if be.Ejected(c.Nanos()) {
		t.Fatal("ejected although a success broke the streak")
	}
	b.ReportFailure(be)
	if !be.Ejected(c.Nanos()) {
		t.Fatal("not ejected after 3 consecutive failures")
	}
}

func TestAdmissionBucket(t *testing.T) {
	// 2 handshakes/s, burst 3, one backend.
	b, c := newTest(t, NewP2C(), specs(1), WithAdmission(2, 3, 0))
	be := b.Snapshot().ByID("a")
	steps := []struct {
		advance time.Duration
		places  int
		want    string
		reason  Reason
	}{
		{0, 4, "aaa-", AllFull},                   // burst of 3, then full
		{499 * time.Millisecond, 1, "-", AllFull}, // not yet refilled
		{time.Millisecond, 2, "a-", AllFull},      // one token per 500ms
		{10 * time.Second, 4, "aaa-", AllFull},    // refills to the burst, no more
		{1500 * time.Millisecond, 3, "aaa", OK},   // 3 tokens back after 1.5s
	}
	for i, st := range steps {
		c.Advance(st.advance)
		if got := placeIDs(b, c, st.places); got != st.want {
			t.Fatalf("step %d: %q, want %q", i, got, st.want)
		}
		if _, r := b.PlaceWithReason(c.pick()); st.reason == AllFull && r != AllFull {
			t.Fatalf("step %d: reason %v, want AllFull", i, r)
		}
	}
	if be.Handshakes.Load() != 3+1+3+3 {
		t.Fatalf("handshakes %d", be.Handshakes.Load())
	}
}

func TestAdmissionSkipsToNextAndRetryAfter(t *testing.T) {
	b, c := newTest(t, NewRoundRobin(), specs(1, 1), WithAdmission(1, 1, 0))
	if got := placeIDs(b, c, 3); got != "ab-" {
		t.Fatalf("got %q, want ab-", got)
	}
	c.Advance(300 * time.Millisecond)
	if d := b.RetryAfter(); d != time.Second {
		t.Fatalf("RetryAfter %v, want 1s (0.7s rounded up)", d)
	}
	b2, c2 := newTest(t, NewRoundRobin(), specs(1), WithAdmission(0.25, 1, 0))
	b2.Place(c2.pick())
	if d := b2.RetryAfter(); d != 4*time.Second {
		t.Fatalf("RetryAfter %v, want 4s", d)
	}
}

func TestAdmissionTokensOnlyForPlacement(t *testing.T) {
	// least_sessions looks at every backend; only the chosen one spends a token.
	b, c := newTest(t, NewLeastSessions(), specs(1, 1, 1), WithAdmission(1, 1, 0))
	s := b.Snapshot()
	s.ByID("a").Sessions.Store(5)
	s.ByID("c").Sessions.Store(5)
	if be := b.Place(c.pick()); be == nil || be.ID != "b" {
		t.Fatalf("got %v, want b", be)
	}
	for _, id := range []string{"a", "c"} {
		if !s.HasRoom(s.ByID(id), c.Nanos()) {
			t.Fatalf("%s lost its token without being placed", id)
		}
	}
	if s.HasRoom(s.ByID("b"), c.Nanos()) {
		t.Fatal("b kept its token after a placement")
	}
}

func TestAdmissionSessionCap(t *testing.T) {
	b, c := newTest(t, NewRoundRobin(), specs(1, 1), WithAdmission(0, 0, 2))
	s := b.Snapshot()
	s.ByID("a").Sessions.Store(2)
	if got := placeIDs(b, c, 3); got != "bbb" {
		t.Fatalf("a at its cap: %q, want bbb", got)
	}
	s.ByID("b").Sessions.Store(3)
	if be, r := b.PlaceWithReason(c.pick()); be != nil || r != AllFull {
		t.Fatalf("all at cap: %v %v", be, r)
	}
	if d := b.RetryAfter(); d != time.Second {
		t.Fatalf("RetryAfter with caps full: %v", d)
	}
	s.ByID("a").Sessions.Store(1)
	if be := b.Place(c.pick()); be == nil || be.ID != "a" {
		t.Fatalf("after a session ended: %v", be)
	}
}

func TestConcurrentPlaceUpdate(t *testing.T) {
	for _, name := range testPolicyNames {
		t.Run(name, func(t *testing.T) {
			p := testPolicy(name)
			b := New(p, WithAdmission(1e9, 1000, 0))
			b.Update(specs(1, 2, 3))
			var wg sync.WaitGroup
			placed := make([]int, 4)
			for g := range 4 {
				wg.Go(func() {
					pick := &Pick{HasKey: true}
					for i := range 3000 {
						pick.Key, pick.Now = uint64(i), 0
						if be := b.Place(pick); be != nil {
							placed[g]++
							be.Sessions.Add(1)
							b.ReportSuccess(be)
							if i%50 == 0 {
								b.ReportFailure(be)
							}
						}
					}
				})
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			for i := 0; ; i++ {
				select {
				case <-done:
				default:
					w := make([]int, 2+i%5)
					for j := range w {
						w[j] = 1 + (i+j)%4
					}
					b.Update(specs(w...))
					_ = b.Stats("a")
					continue
				}
				break
			}
			total := 0
			for _, n := range placed {
				total += n
			}
			if total == 0 {
				t.Fatal("no placement succeeded")
			}
		})
	}
}

func TestExcludeAcrossUpdate(t *testing.T) {
	b, c := newTest(t, NewRoundRobin(), specs(1, 1))
	old := b.Snapshot().ByID("a")
	b.Update(specs(1, 1, 0)) // new snapshot, new *Backend values, same Stats
	for range 4 {
		if be := b.Place(c.pick(old)); be == nil || be.ID != "b" {
			t.Fatalf("a from the old snapshot not excluded: got %v", be)
		}
	}
}

func TestPlaceZeroAllocs(t *testing.T) {
	for _, name := range testPolicyNames {
		p := testPolicy(name)
		b, c := newTest(t, p, specs(1, 2, 3, 4, 5), WithAdmission(1e9, 1<<20, 0))
		b.Update(specs(1, 2, 3, 4, 5, 6)) // one slow-starting backend
		pick := &Pick{HasKey: true, Exclude: []*Backend{b.Snapshot().ByID("a")}}
		b.Place(pick) // builds the round-robin sequence once
		if n := testing.AllocsPerRun(1000, func() {
			pick.Key++
			pick.Now = c.Nanos()
			b.Place(pick)
		}); n != 0 {
			t.Errorf("%s: %v allocs per Place", name, n)
		}
	}
}

func TestClaim(t *testing.T) {
	b := New(nil)
	b.Update([]Spec{{ID: "a", Addr: "a:1", Weight: 1}})
	be := b.Snapshot().ByID("a")
	c := be.Claim()
	d := be.Claim()
	if n := be.Sessions.Load(); n != 2 {
		t.Fatalf("Sessions after two claims = %d, want 2", n)
	}
	c.Release()
	c.Release()
	if c.Keep() {
		t.Error("Keep after Release reported a count")
	}
	if n := be.Sessions.Load(); n != 1 {
		t.Fatalf("Sessions after a double Release = %d, want 1", n)
	}
	if !d.Keep() {
		t.Error("Keep of a held claim = false")
	}
	d.Release()
	if n := be.Sessions.Load(); n != 1 {
		t.Fatalf("Release after Keep changed Sessions to %d, want 1", n)
	}
}
