package daemon

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"sioproxy/configs"
)

// Every key of configs.Config is in the reload plan, itself or through a section: a new key must say
// how a running process takes it, or that it needs a restart.
func TestReloadPlanCoversEveryKey(t *testing.T) {
	keys := configs.Keys()
	if len(keys) < 40 {
		t.Fatalf("configs.Keys() lists only %d keys", len(keys))
	}
	for _, k := range keys {
		if _, ok := changeOf(k); !ok {
			t.Errorf("config key %q has no entry in the reload plan (daemon/reload.go)", k)
		}
	}
	// And the plan names no key the schema lacks (a renamed key would leave a dead entry).
	for k := range reloadPlan {
		found := false
		for _, sk := range keys {
			if sk == k || strings.HasPrefix(sk, k+".") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("reload plan entry %q matches no config key", k)
		}
	}
}

func TestMakePlan(t *testing.T) {
	p, err := makePlan([]string{"balancer.policy", "log.level", "proxy.dial_timeout", "discovery.consul.services", "backends"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Change{Policy, LogLevel, Clients, Discovery, Backends} {
		if !p.has(c) {
			t.Errorf("plan lacks %v", c)
		}
	}
	if p.has(Mirror) {
		t.Error("plan has a mirror change nobody asked for")
	}
	_, err = makePlan([]string{"balancer.slow_start", "log.level", "sticky.tag_sids", "admin.token"})
	if err == nil {
		t.Fatal("restart-only keys were accepted")
	}
	for _, k := range []string{"balancer.slow_start", "sticky.tag_sids", "admin.token"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("refusal %q does not name %s", err, k)
		}
	}
	if strings.Contains(err.Error(), "log.level") {
		t.Errorf("refusal %q names a reloadable key", err)
	}
}

// Drain parameters that would make the scheduler misbehave are refused (rate=NaN used to panic the
// process a second later, in rand.Int64N).
func TestCheckDrain(t *testing.T) {
	bad := []struct {
		name     string
		deadline time.Duration
		rate     float64
	}{
		{"NaN rate", time.Second, math.NaN()},
		{"+Inf rate", time.Second, math.Inf(1)},
		{"-Inf rate", time.Second, math.Inf(-1)},
		{"zero rate", time.Second, 0},
		{"negative rate", time.Second, -3},
		{"absurd rate", time.Second, 1e12},
		{"tiny rate", time.Second, 1e-300}, // the interval would overflow a Duration
		{"negative deadline", -time.Second, 10},
		{"absurd deadline", 1000 * time.Hour, 10},
	}
	for _, c := range bad {
		if err := checkDrain(c.deadline, c.rate); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	for _, c := range []struct {
		deadline time.Duration
		rate     float64
	}{{0, 10}, {time.Second, MinDrainRate}, {MaxDrainDeadline, MaxDrainRate}} {
		if err := checkDrain(c.deadline, c.rate); err != nil {
			t.Errorf("deadline %v rate %v: %v", c.deadline, c.rate, err)
		}
	}
}

// The README's reload table names every entry of the plan (by its full key or its last part).
func TestReadmeDocumentsTheReloadPlan(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for k := range reloadPlan {
		last := k[strings.LastIndexByte(k, '.')+1:]
		if !strings.Contains(string(readme), "`"+k+"`") && !strings.Contains(string(readme), "`"+last+"`") {
			t.Errorf("README.md's reload table does not name %q", k)
		}
	}
}
