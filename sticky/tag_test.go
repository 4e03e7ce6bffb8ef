package sticky

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTagFor(t *testing.T) {
	ids := []string{"", "a", "b", "backend-1", "backend-2", "10.0.0.1:3000", "http://10.0.0.2:3000", strings.Repeat("x", 500)}
	seen := map[string]string{}
	for _, id := range ids {
		tag := TagFor(id)
		if !validTag(tag) {
			t.Errorf("TagFor(%q) = %q, not %d base64url chars", id, tag, TagLen)
		}
		if again := TagFor(id); again != tag {
			t.Errorf("TagFor(%q) not stable: %q then %q", id, tag, again)
		}
		if other, dup := seen[tag]; dup {
			t.Errorf("TagFor(%q) = TagFor(%q) = %q", id, other, tag)
		}
		seen[tag] = id
	}
}

func TestTagCodecPinned(t *testing.T) {
	// Tagged sids live in clients across proxy restarts, replicas and versions: the tag and check
	// functions must never change. These values were computed once and are frozen.
	for id, want := range map[string]string{"backend-1": "6Lb", "consul-svc-42": "vdC", "http://127.0.0.1:3001": "FEj"} {
		if got := TagFor(id); got != want {
			t.Errorf("TagFor(%q) = %q, want pinned %q", id, got, want)
		}
	}
	if got := string(AppendTagged(nil, "6Lb", []byte("lv_VI97HAXpY6yYWAAAC"))); got != pinnedTagged {
		t.Errorf("AppendTagged = %q, want pinned %q", got, pinnedTagged)
	}
}

func TestTagRoundTrip(t *testing.T) {
	sids := []string{
		"lv_VI97HAXpY6yYWAAAC", // default generator
		"x",                    // short
		strings.Repeat("s", 200),
		"with.dot.inside",
		"dash-and_underscore",
		"AbCd.lookslikeatag",
		"ünïcödé",
	}
	for _, id := range []string{"backend-1", "backend-2", "x"} {
		tag := TagFor(id)
		for _, sid := range sids {
			tagged := AppendTagged(nil, tag, []byte(sid))
			if len(tagged) != len(sid)+taggedOverhead {
				t.Errorf("AppendTagged(%q, %q) = %q: length %d", tag, sid, tagged, len(tagged))
			}
			gotTag, raw, ok := SplitTagged(tagged)
			if !ok || string(gotTag) != tag || string(raw) != sid {
				t.Errorf("SplitTagged(%q) = %q, %q, %v; want %q, %q, true", tagged, gotTag, raw, ok, tag, sid)
			}
		}
	}
}

func TestAppendTaggedKeepsPrefix(t *testing.T) {
	got := AppendTagged([]byte("sid="), "AAA", []byte("abc"))
	if !strings.HasPrefix(string(got), "sid=AAA") || !strings.HasSuffix(string(got), ".abc") || len(got) != 4+3+2+3 {
		t.Errorf("AppendTagged with prefix = %q", got)
	}
}

func TestAppendTaggedInvalidTag(t *testing.T) {
	for _, tag := range []string{"", "AB", "ABCD", "A.B", "A+B", "A/B"} {
		got := AppendTagged([]byte("x"), tag, []byte("sid"))
		if string(got) != "xsid" {
			t.Errorf("AppendTagged(%q) = %q, want the sid untagged", tag, got)
		}
	}
}

func TestSplitTaggedRejects(t *testing.T) {
	tag := TagFor("backend-1")
	good := string(AppendTagged(nil, tag, []byte("lv_VI97HAXpY6yYWAAAC")))
	tests := []struct{ name, sid string }{
		{"empty", ""},
		{"untagged default sid", "lv_VI97HAXpY6yYWAAAC"},
		{"too short", good[:taggedOverhead]},
		{"no dot", good[:4] + "x" + good[5:]},
		{"dot elsewhere", "AB.Cdefgh"},
		{"bad tag char", "A+" + good[2:]},
		{"bad check char", good[:3] + "." + good[4:]},
	}
	// Any single-character change of the tag must be rejected.
	for i := 0; i < TagLen; i++ {
		for _, c := range []byte(alphabet) {
			if c == good[i] {
				continue
			}
			altered := []byte(good)
			altered[i] = c
			tests = append(tests, struct{ name, sid string }{"tag altered", string(altered)})
		}
	}
	for _, tt := range tests {
		tag, raw, ok := SplitTagged([]byte(tt.sid))
		if ok {
			t.Errorf("%s: SplitTagged(%q) = %q, %q, true; want false", tt.name, tt.sid, tag, raw)
		}
		if !ok && (tag != nil || raw != nil) {
			t.Errorf("%s: SplitTagged(%q) returned non-nil parts with ok=false", tt.name, tt.sid)
		}
	}
}

func TestSplitTaggedFalsePositiveRate(t *testing.T) {
	// Random sids of the tagged shape pass the check about 1 time in 64.
	r := rand.New(rand.NewPCG(1, 2))
	const n = 64 * 2000
	hits := 0
	sid := make([]byte, 25)
	for i := 0; i < n; i++ {
		for j := range sid {
			sid[j] = alphabet[r.IntN(64)]
		}
		sid[4] = '.'
		if _, _, ok := SplitTagged(sid); ok {
			hits++
		}
	}
	if expect := n / 64; hits < expect*8/10 || hits > expect*12/10 {
		t.Errorf("%d of %d random tagged-shape sids accepted, want about %d", hits, n, expect)
	}
}

func TestSplitTaggedAllocs(t *testing.T) {
	sid := AppendTagged(nil, TagFor("b"), []byte("lv_VI97HAXpY6yYWAAAC"))
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, ok := SplitTagged(sid); !ok {
			t.Fatal("SplitTagged rejected a tagged sid")
		}
	})
	if allocs != 0 {
		t.Errorf("SplitTagged allocates %v times per call, want 0", allocs)
	}
}

const pinnedTagged = "6Lbr.lv_VI97HAXpY6yYWAAAC"
