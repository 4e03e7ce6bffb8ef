package health

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"sioproxy/balancer"
	"sioproxy/internal/fakeclock"
)

// fakeConsul serves the watcher's queries one by one from the test goroutine.
type fakeConsul struct{ calls chan *fakeCall }

type fakeCall struct {
	service string
	index   uint64
	wait    time.Duration
	reply   chan fakeReply
}

type fakeReply struct {
	entries []*api.ServiceEntry
	index   uint64
	err     error
}

func (f *fakeConsul) query(ctx context.Context, service string, index uint64, wait time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	c := &fakeCall{service: service, index: index, wait: wait, reply: make(chan fakeReply, 1)}
	select {
	case f.calls <- c:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	select {
	case r := <-c.reply:
		if r.err != nil {
			return nil, nil, r.err
		}
		return r.entries, &api.QueryMeta{LastIndex: r.index}, nil
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

// watchHarness runs a ConsulWatcher against a fakeConsul and a fakeClock.
type watchHarness struct {
	t         *testing.T
	fc        *fakeConsul
	clk       *fakeclock.Clock
	w         *ConsulWatcher
	published chan []balancer.Spec
}

func newHarness(t *testing.T, opts ConsulOptions) *watchHarness {
	h := &watchHarness{t: t, fc: &fakeConsul{calls: make(chan *fakeCall)}, clk: newFakeClock(),
		published: make(chan []balancer.Spec, 100)}
	opts.Clock = h.clk
	opts.Rand = func() float64 { return 0 }
	if opts.WaitTime == 0 {
		opts.WaitTime = 30 * time.Second
	}
	opts.Publish = func(service string, specs []balancer.Spec) {
		if service != "web" {
			t.Errorf("published service %q", service)
		}
		h.published <- specs
	}
	w, err := newConsulWatcher(opts, []string{"web"}, h.fc.query)
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// call waits for the next query and checks its index.
func (h *watchHarness) call(wantIndex uint64) *fakeCall {
	h.t.Helper()
	select {
	case c := <-h.fc.calls:
		if c.index != wantIndex {
			h.t.Fatalf("query index = %d, want %d", c.index, wantIndex)
		}
		return c
	case <-time.After(5 * time.Second):
		h.t.Fatal("timed out waiting for a query")
		return nil
	}
}

// wait expects the watcher to sleep for d, then lets that time pass.
func (h *watchHarness) wait(d time.Duration) {
	h.t.Helper()
	if got := h.clk.NextWait(h.t); got != d {
		h.t.Fatalf("sleep = %v, want %v", got, d)
	}
	h.clk.Advance(d)
}

func (h *watchHarness) expectPublish(want []balancer.Spec) {
	h.t.Helper()
	select {
	case got := <-h.published:
		if !slices.Equal(got, want) {
			h.t.Fatalf("published %+v, want %+v", got, want)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatal("timed out waiting for a publish")
	}
}

// expectNoPublish must be called once the watcher has moved on (it asked for the next
// query or timer): a publish would have happened before.
func (h *watchHarness) expectNoPublish() {
	h.t.Helper()
	select {
	case got := <-h.published:
		h.t.Fatalf("unexpected publish %+v", got)
	default:
	}
}

func TestConsulWatcherPublishesChangesOnly(t *testing.T) {
	h := newHarness(t, ConsulOptions{MinInterval: 100 * time.Millisecond, WaitTime: time.Minute})
	pass := []*api.HealthCheck{check("service:web", api.HealthPassing)}
	two := []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass), entry("b", "10.0.0.2", 80, pass)}

	c := h.call(0)
	if c.service != "web" || c.wait != time.Minute {
		t.Fatalf("query %q wait %v", c.service, c.wait)
	}
	c.reply <- fakeReply{entries: two, index: 10}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active), spec("b", "10.0.0.2:80", 1, balancer.Active)})

	// Same content at a new index (an idempotent write, a timeout): no publish.
	h.wait(100 * time.Millisecond)
	h.call(10).reply <- fakeReply{entries: two, index: 11}
	h.wait(100 * time.Millisecond)
	c = h.call(11)
	h.expectNoPublish()

	// b goes into maintenance.
	maint := []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass),
		entry("b", "10.0.0.2", 80, append(slices.Clone(pass), check(api.ServiceMaintPrefix+"b", api.HealthCritical)))}
	c.reply <- fakeReply{entries: maint, index: 12}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active), spec("b", "10.0.0.2:80", 1, balancer.Draining)})
	if !h.w.Healthy() {
		t.Fatal("Healthy() = false after answers")
	}
}

func TestConsulWatcherBackoffKeepsLastSet(t *testing.T) {
	h := newHarness(t, ConsulOptions{MinInterval: 100 * time.Millisecond, BackoffMin: time.Second, BackoffMax: 4 * time.Second})
	pass := []*api.HealthCheck{check("service:web", api.HealthPassing)}
	one := []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass)}
	h.call(0).reply <- fakeReply{entries: one, index: 7}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active)})
	h.wait(100 * time.Millisecond)

	down := errors.New("connection refused")
	// Rand pinned at 0: backoff is half of min·2^(n-1), capped at max.
	index := uint64(7)
	for _, d := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 2 * time.Second} {
		h.call(index).reply <- fakeReply{err: down}
		index = 0
		h.wait(d)
		if h.w.Healthy() {
			t.Fatal("Healthy() = true while Consul fails")
		}
	}
	if age := h.w.LastIndexAge(); age != 100*time.Millisecond+5500*time.Millisecond {
		t.Fatalf("LastIndexAge = %v", age)
	}
	h.expectNoPublish() // the last set is kept

	// After errors the watcher starts over with a fresh read (index 0): Consul may have
	// restarted with a lower index. Then it blocks again.
	h.call(0).reply <- fakeReply{entries: one, index: 3}
	h.wait(100 * time.Millisecond)
	h.call(3)
	h.expectNoPublish()
	if !h.w.Healthy() || h.w.LastIndexAge() != 100*time.Millisecond {
		t.Fatalf("Healthy() = %v, LastIndexAge = %v after recovery", h.w.Healthy(), h.w.LastIndexAge())
	}
}

func TestConsulWatcherDeregisterGrace(t *testing.T) {
	h := newHarness(t, ConsulOptions{MinInterval: 100 * time.Millisecond, WaitTime: time.Minute, DeregisterGrace: 10 * time.Second})
	pass := []*api.HealthCheck{check("service:web", api.HealthPassing)}
	a := entry("a", "10.0.0.1", 80, pass)
	b := entry("b", "10.0.0.2", 80, pass)
	h.call(0).reply <- fakeReply{entries: []*api.ServiceEntry{a, b}, index: 5}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active), spec("b", "10.0.0.2:80", 1, balancer.Active)})
	h.wait(100 * time.Millisecond)

	h.call(5).reply <- fakeReply{entries: []*api.ServiceEntry{a}, index: 6}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active), spec("b", "10.0.0.2:80", 1, balancer.Draining)})
	h.wait(100 * time.Millisecond)

	// The blocking query waits no longer than the grace left, so b is dropped on time.
	c := h.call(6)
	if want := 10*time.Second - 100*time.Millisecond; c.wait != want {
		t.Fatalf("query wait = %v, want %v", c.wait, want)
	}
	h.clk.Advance(c.wait)
	c.reply <- fakeReply{entries: []*api.ServiceEntry{a}, index: 6}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active)})
}

func TestConsulWatcherGraceExpiresDuringBackoff(t *testing.T) {
	h := newHarness(t, ConsulOptions{MinInterval: 100 * time.Millisecond, DeregisterGrace: time.Second,
		BackoffMin: 10 * time.Second, BackoffMax: 10 * time.Second})
	pass := []*api.HealthCheck{check("service:web", api.HealthPassing)}
	a := entry("a", "10.0.0.1", 80, pass)
	h.call(0).reply <- fakeReply{entries: []*api.ServiceEntry{a}, index: 5}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active)})
	h.wait(100 * time.Millisecond)
	h.call(5).reply <- fakeReply{entries: []*api.ServiceEntry{}, index: 6}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Draining)})
	h.wait(100 * time.Millisecond)
	h.call(6).reply <- fakeReply{err: errors.New("down")}
	// Backoff is 5 s but the grace ends in 900 ms: the watcher wakes up to drop a.
	h.wait(900 * time.Millisecond)
	h.expectPublish([]balancer.Spec{})
	h.wait(4100 * time.Millisecond)
	h.call(0)
}

func TestConsulWatcherIndexWentBackwards(t *testing.T) {
	h := newHarness(t, ConsulOptions{MinInterval: 100 * time.Millisecond})
	one := []*api.ServiceEntry{entry("a", "10.0.0.1", 80, nil)}
	h.call(0).reply <- fakeReply{entries: one, index: 10}
	h.expectPublish([]balancer.Spec{spec("a", "10.0.0.1:80", 1, balancer.Active)})
	h.wait(100 * time.Millisecond)
	h.call(10).reply <- fakeReply{entries: one, index: 3} // snapshot restore, new cluster
	h.wait(100 * time.Millisecond)
	h.call(0).reply <- fakeReply{entries: one, index: 0} // a buggy zero
	h.wait(100 * time.Millisecond)
	h.call(1).reply <- fakeReply{entries: one, index: 12}
	h.wait(100 * time.Millisecond)
	h.call(12)
	h.expectNoPublish()
}

func TestNewConsulWatcherValidates(t *testing.T) {
	pub := func(string, []balancer.Spec) {}
	tests := []struct {
		name string
		opts ConsulOptions
		ok   bool
	}{
		{"no service", ConsulOptions{Publish: pub, WaitTime: time.Second}, false},
		{"no publish", ConsulOptions{Services: []string{"web"}, WaitTime: time.Second}, false},
		{"no wait time", ConsulOptions{Services: []string{"web"}, Publish: pub}, false},
		{"ok", ConsulOptions{Services: []string{"web"}, Publish: pub, WaitTime: time.Second}, true},
		{"services", ConsulOptions{Services: []string{"a", "b"}, Publish: pub, WaitTime: time.Second}, true},
		{"tls files missing", ConsulOptions{Services: []string{"web"}, Publish: pub, WaitTime: time.Second,
			TLS: ConsulTLS{CAFile: "/nonexistent/ca.pem"}}, false},
	}
	for _, tc := range tests {
		w, err := NewConsulWatcher(tc.opts)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: err = %v", tc.name, err)
		}
		if tc.ok && len(w.watches) != len(tc.opts.Services) {
			t.Fatalf("%s: %d watches", tc.name, len(w.watches))
		}
	}
}

// FirstAnswers closes once every service's first query has completed, after its answer was
// published, or after it failed; not before.
func TestConsulWatcherFirstAnswers(t *testing.T) {
	fc := &fakeConsul{calls: make(chan *fakeCall)}
	published := make(chan string, 10)
	opts := ConsulOptions{WaitTime: time.Minute, Clock: newFakeClock(), Rand: func() float64 { return 0 },
		Publish: func(service string, _ []balancer.Spec) { published <- service }}
	w, err := newConsulWatcher(opts, []string{"web", "chat"}, fc.query)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	first := func() bool {
		select {
		case <-w.FirstAnswers():
			return true
		default:
			return false
		}
	}
	calls := map[string]*fakeCall{}
	for range 2 {
		select {
		case c := <-fc.calls:
			calls[c.service] = c
		case <-time.After(5 * time.Second):
			t.Fatal("timed out waiting for the first queries")
		}
	}
	if first() {
		t.Fatal("FirstAnswers closed before any query completed")
	}
	pass := []*api.HealthCheck{check("service:web", api.HealthPassing)}
	calls["web"].reply <- fakeReply{entries: []*api.ServiceEntry{entry("a", "10.0.0.1", 80, pass)}, index: 3}
	if got := <-published; got != "web" {
		t.Fatalf("published %q", got)
	}
	if first() {
		t.Fatal("FirstAnswers closed while the query of chat is still pending")
	}
	calls["chat"].reply <- fakeReply{err: errors.New("connection refused")}
	select {
	case <-w.FirstAnswers():
	case <-time.After(5 * time.Second):
		t.Fatal("FirstAnswers not closed once every first query completed (one with an answer, one with an error)")
	}
}
