package balancer

import (
	"strings"
	"testing"
)

// zoned builds active specs a, b, c... (weight 1) in the given zones.
func zoned(zones ...string) []Spec {
	sp := specs(make([]int, len(zones))...)
	for i := range sp {
		sp[i].Weight = 1
		sp[i].Zone = zones[i]
	}
	return sp
}

func TestZonePreferenceEveryPolicy(t *testing.T) {
	for _, name := range testPolicyNames {
		t.Run(name, func(t *testing.T) {
			p := testPolicy(name)
			b, c := newTest(t, p, zoned("z1", "z2", "z1", "z2"), WithZonePreference("z1"), WithSlowStart(0))
			got := placeIDs(b, c, 40)
			if strings.Trim(got, "ac") != "" || !strings.Contains(got, "a") || !strings.Contains(got, "c") {
				t.Fatalf("placements %q: want only and both of a, c (zone z1)", got)
			}
		})
	}
}

func TestZonePreferenceFallsBack(t *testing.T) {
	b, c := newTest(t, NewRoundRobin(), zoned("z1", "z2", "z2"), WithZonePreference("z1"),
		WithAdmission(0, 0, 2), WithEjection(1e9, 1))
	s := b.Snapshot()
	if got := placeIDs(b, c, 2); got != "aa" {
		t.Fatalf("zone z1 first: %q, want aa", got)
	}
	// a at its session cap: the other zone takes the session, and a again once it has room.
	s.ByID("a").Sessions.Store(2)
	if got := placeIDs(b, c, 4); got != "bcbc" {
		t.Fatalf("a full: %q, want bcbc", got)
	}
	s.ByID("a").Sessions.Store(0)
	if got := placeIDs(b, c, 1); got != "a" {
		t.Fatalf("a has room again: %q", got)
	}
	// a excluded (a retried handshake) or ejected: the other zone.
	if be := b.Place(c.pick(s.ByID("a"))); be == nil || be.ID == "a" {
		t.Fatalf("a excluded: %v", be)
	}
	b.ReportFailure(s.ByID("a"))
	if got := placeIDs(b, c, 2); strings.Contains(got, "a") || strings.Contains(got, "-") {
		t.Fatalf("a ejected: %q", got)
	}
	// a draining: the zone has no candidate, all of the others take sessions.
	sp := zoned("z1", "z2", "z2")
	sp[0].State = Draining
	b.Update(sp)
	if b.Snapshot().zone != nil {
		t.Fatal("zone view built with no candidate in the zone")
	}
	if got := placeIDs(b, c, 4); strings.Count(got, "b") != 2 || strings.Count(got, "c") != 2 {
		t.Fatalf("a draining: %q, want b and c alternating", got)
	}
	// Every backend gone from the zone's candidates: NoBackends, as without the preference.
	sp[1].State, sp[2].State = Draining, Draining
	b.Update(sp)
	if be, r := b.PlaceWithReason(c.pick()); be != nil || r != NoBackends {
		t.Fatalf("none eligible: %v %v", be, r)
	}
}

func TestZonePreferenceOffOrUnknownZone(t *testing.T) {
	b, c := newTest(t, NewRoundRobin(), zoned("z1", "z2"))
	if got := placeIDs(b, c, 4); got != "abab" {
		t.Fatalf("no preference: %q, want abab", got)
	}
	b, c = newTest(t, NewRoundRobin(), zoned("z1", "z2"), WithZonePreference("z9"))
	if b.Snapshot().zone != nil {
		t.Fatal("zone view built for a zone no backend is in")
	}
	if got := placeIDs(b, c, 4); got != "abab" {
		t.Fatalf("no backend in the proxy's zone: %q, want abab", got)
	}
	b, _ = newTest(t, NewRoundRobin(), zoned("z1", "z1"), WithZonePreference("z1"))
	if b.Snapshot().zone != nil {
		t.Fatal("zone view built though every candidate is in the zone")
	}
}

func TestZonePreferenceSticksToSnapshotLookups(t *testing.T) {
	// The view is for placement only: lookups by id and tag see every backend.
	b, _ := newTest(t, NewRoundRobin(), zoned("z1", "z2"), WithZonePreference("z1"),
		WithTagger(func(id string) string { return "t" + id }))
	s := b.Snapshot()
	if s.ByID("b") == nil || s.ByTag([]byte("tb")) == nil || len(s.Candidates()) != 2 {
		t.Fatalf("lookups: %v %v %d", s.ByID("b"), s.ByTag([]byte("tb")), len(s.Candidates()))
	}
}
