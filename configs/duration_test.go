package configs

import (
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDurationYAML(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"90s", 90 * time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"0", 0, ""},
		{"-5s", -5 * time.Second, ""},
		{"60", 0, `duration "60" has no unit (write e.g. 60s or 60ms)`},
		{"1.5", 0, `duration "1.5" has no unit (write e.g. 1.5s or 1.5ms)`},
		{"later", 0, `invalid duration "later" (write e.g. 500ms, 30s, 1m30s)`},
		{"{a: 1}", 0, "expected a duration such as 30s, got a mapping"},
	}
	for _, tt := range tests {
		var d Duration
		err := yaml.Unmarshal([]byte(tt.in), &d)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || d.Duration() != tt.want):
			t.Errorf("%q = %v, %v; want %v", tt.in, d, err, tt.want)
		}
	}
}

func TestDurationMarshalRoundTrip(t *testing.T) {
	in := Duration(90*time.Second + 500*time.Millisecond)
	out, err := yaml.Marshal(in)
	if err != nil || string(out) != "1m30.5s\n" {
		t.Fatalf("Marshal = %q, %v", out, err)
	}
	var back Duration
	if err := yaml.Unmarshal(out, &back); err != nil || back != in {
		t.Errorf("round trip = %v, %v; want %v", back, err, in)
	}
}

// TestConfigMarshalRoundTrip: a parsed config written back as YAML parses to the same config.
func TestConfigMarshalRoundTrip(t *testing.T) {
	c, err := Parse("sioproxy.example.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("out.yaml", out)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if d := ChangedKeys(c, back); d != nil {
		t.Errorf("round trip changed %v", d)
	}
}
