package health

import "testing"

func TestThreshold(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		results    string // '+' success, '-' failure
		flips      string // 'u' flipped up, 'd' flipped down, '.' no change
	}{
		{"stays up", 2, 3, "+++", "..."},
		{"falls after 3", 2, 3, "---", "..d"},
		{"failure streak broken", 2, 3, "--+--+", "......"},
		{"rises after 2", 2, 3, "---++", "..d.u"},
		{"rise streak broken", 2, 3, "---+-++", "..d...u"},
		{"fall 1 rise 1", 1, 1, "-+-+", "dudu"},
		{"zero counts mean 1", 0, 0, "-+", "du"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := newThreshold(tc.rise, tc.fall)
			got := ""
			for _, r := range tc.results {
				switch {
				case !th.observe(r == '+'):
					got += "."
				case th.up:
					got += "u"
				default:
					got += "d"
				}
			}
			if got != tc.flips {
				t.Fatalf("flips %q, want %q", got, tc.flips)
			}
		})
	}
}
