package chaos

import (
	"fmt"
	"net/http"
	"syscall"
	"time"

	"sioproxy/test/testkit"
)

// Event kinds.
const (
	kindKill        = "backend SIGKILLed, restarted"
	kindMaintenance = "Consul maintenance on, off"
	kindConsul      = "Consul agent restarted"
	kindAdd         = "SIGHUP: service added"
	kindReplace     = "replica replaced beside itself"
	kindDrain       = "drain with deadline"
	kindRemove      = "SIGHUP: service removed"
)

// event is one chaos event as it happened: when it began and ended (its recovery included), and
// the delays measured on the way.
type event struct {
	kind   string
	target string // a backend id or a replica slot
	start  time.Time
	end    time.Time
	marks  []mark
	// sidUnknown: "Session ID unknown" answers of the proxies (sioproxy_sid_unknown_total) while
	// the event ran, summed over the replicas.
	sidUnknown float64
}

type mark struct {
	what  string
	after time.Duration // since start; -1: not reached within its budget
}

func (e *event) mark(what string, d time.Duration) { e.marks = append(e.marks, mark{what, d}) }

// reachedWait marks what as reached now when d (a waitAll result) is not negative, and reports it.
func (e *event) reachedWait(what string, d time.Duration) bool {
	e.reached(what, d >= 0)
	return d >= 0
}

// reached marks what as reached now (ok) or not within its budget.
func (e *event) reached(what string, ok bool) {
	d := time.Duration(-1)
	if ok {
		d = e.since()
	}
	e.mark(what, d)
}

// since is the time since the event's start.
func (e *event) since() time.Duration { return time.Since(e.start) }

// sidUnknownTotal sums sioproxy_sid_unknown_total over the current replicas.
func (c *cluster) sidUnknownTotal() float64 {
	var n float64
	for _, px := range c.replicas() {
		v, _ := px.Metrics(c.t).Value("sioproxy_sid_unknown_total")
		n += v
	}
	return n
}

// begin starts recording an event.
func (c *cluster) begin(kind, target string) *event {
	return &event{kind: kind, target: target, start: time.Now(), sidUnknown: -c.sidUnknownTotal()}
}

// finish ends the record of an event. extra is the counter of replicas that left during it.
func (c *cluster) finish(e *event, extra float64) *event {
	e.end = time.Now()
	e.sidUnknown += c.sidUnknownTotal() + extra
	return e
}

// Budgets of the events on a loaded 2-core machine.
const (
	drainStateBudget = 10 * time.Second // Consul's verdict (1 s checks) in both replicas' /backends
	recoveryBudget   = 30 * time.Second // every session connected and acked again
	restartBudget    = 20 * time.Second // a restarted backend active again in both replicas
	consulBudget     = 40 * time.Second // a restarted Consul agent followed again by both replicas
	replicaBudget    = 30 * time.Second // a new replica up, with every backend from Consul
	exitBudget       = 30 * time.Second // a SIGTERMed replica gone (shutdown_timeout 15 s)
)

// killBackend SIGKILLs a backend of mainService under its sessions, waits until both replicas
// drain it and every session is acked again (the killed backend's on other backends), then
// starts it again on its port and waits until both replicas have it active.
func (c *cluster) killBackend(ds []*driver, i int) *event {
	b := c.main[i]
	e := c.begin(kindKill, b.Name)
	b.Kill()
	c.killed = append(c.killed, b)
	e.reached("draining in both replicas", c.waitAll("kill "+b.Name+": draining", drainStateBudget, c.stateIs(b.Name, "draining")) >= 0)
	e.mark("every session acked again", waitAcked(c.t, ds, e.start, recoveryBudget, "kill "+b.Name))
	nb := b.Relaunch(c.t)
	c.main[i] = nb
	c.procs = append(c.procs, nb)
	e.mark("restarted", e.since())
	e.reached("active again in both replicas", c.waitAll("restart "+b.Name+": active", restartBudget, c.stateIs(b.Name, "active")) >= 0)
	return c.finish(e, 0)
}

// maintenance puts a backend of mainService in Consul maintenance until both replicas drain it,
// then takes it out until both have it active again. Its sessions stay where they are.
func (c *cluster) maintenance(i int) *event {
	b := c.main[i]
	e := c.begin(kindMaintenance, b.Name)
	if err := c.consul.Agent().EnableServiceMaintenance(b.Name, "chaos soak"); err != nil {
		c.t.Fatalf("maintenance on %s: %v", b.Name, err)
	}
	e.reached("draining in both replicas", c.waitAll("maintenance "+b.Name, drainStateBudget, c.stateIs(b.Name, "draining")) >= 0)
	off := time.Now()
	if err := c.consul.Agent().DisableServiceMaintenance(b.Name); err != nil {
		c.t.Fatalf("maintenance off %s: %v", b.Name, err)
	}
	e.mark("off", off.Sub(e.start))
	e.reached("active in both replicas", c.waitAll("maintenance off "+b.Name, drainStateBudget, c.stateIs(b.Name, "active")) >= 0)
	return c.finish(e, 0)
}

// restartConsul restarts the Consul agent (a fresh one on the same ports, as after a crash with
// its data lost), registers the backends again, and waits until both replicas follow it again.
func (c *cluster) restartConsul() *event {
	e := c.begin(kindConsul, "agent")
	c.agent.Restart()
	c.registerAll()
	e.mark("agent up, services registered", e.since())
	want := c.wantStates()
	e.reached("followed again by both replicas", c.waitAll("consul restart", consulBudget, func(px *testkit.Proxy) bool {
		v, _ := px.Metrics(c.t).Value("sioproxy_consul_healthy")
		return v == 1 && mapsEqual(px.States(c.t), want)
	}) >= 0)
	return c.finish(e, 0)
}

// addService reloads both replicas with SIGHUP to watch extraService as well. A replica that
// drained the service's backend in an earlier round still has it drained (an admin drain outlives
// the backend's removal, and cannot be lifted while the backend is absent): the soak undrains it
// there, as an operator would, and says so.
func (c *cluster) addService() *event {
	e := c.begin(kindAdd, extraService)
	c.reload([]string{mainService, extraService})
	e.mark("reloaded", e.since())
	id := c.extra.Name
	c.waitAll("add "+extraService+": listed", drainStateBudget, func(px *testkit.Proxy) bool { return px.States(c.t)[id] != "" })
	undrained := 0
	for _, px := range c.replicas() {
		if px.States(c.t)[id] == "draining" {
			px.MustAdminPost(c.t, "/backends/"+id+"/undrain")
			undrained++
		}
	}
	if undrained > 0 {
		e.mark(fmt.Sprintf("undrained in %d replicas (an earlier round's drain)", undrained), 0)
	}
	e.reached(id+" active in both replicas", c.waitAll("add "+extraService, drainStateBudget, c.stateIs(id, "active")) >= 0)
	return c.finish(e, 0)
}

// replace starts a new process on a slot's address beside the running one, waits until it has
// every backend from Consul, then SIGTERMs the old one and waits until it is gone.
func (c *cluster) replace(i int) *event {
	s := c.slots[i]
	old := s.cur()
	e := c.begin(kindReplace, "replica "+s.name)
	nu := c.launchReplica(s)
	testkit.WaitTCP(c.t, nu.Proc, nu.Admin, replicaBudget)
	want := c.wantStates()
	if !testkit.WaitFor(replicaBudget, func() bool { return mapsEqual(nu.States(c.t), want) }) {
		c.t.Fatalf("%s: /backends is %v %v after its start, want %v", nu.Name, nu.States(c.t), replicaBudget, want)
	}
	e.mark("new process has every backend", e.since())
	if v, _ := nu.Metrics(c.t).Value("sioproxy_sid_unknown_total"); v > 0 {
		e.mark(fmt.Sprintf("it answered %.0f \"Session ID unknown\" before", v), 0)
	}
	oldUnknown, _ := old.Metrics(c.t).Value("sioproxy_sid_unknown_total")
	if err := old.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("%s: SIGTERM: %v", old.Name, err)
	}
	term := e.since()
	e.mark("SIGTERM to the old one", term)
	s.gens = append(s.gens, nu)
	if err := old.Wait(exitBudget); err != nil {
		c.t.Errorf("%s after SIGTERM: %v", old.Name, err)
		e.mark("old one exited", -1)
	} else {
		e.mark("old one exited", e.since())
	}
	// begin counted the old process among the replicas, finish counts the new one: add the old
	// one's count as of its SIGTERM (it cannot be asked after).
	return c.finish(e, oldUnknown)
}

// drainExtra drains the added service's backend in both replicas with a deadline (the admin API),
// and waits until neither has a session or tunnel on it left and every client is acked again.
func (c *cluster) drainExtra(ds []*driver) *event {
	id := c.extra.Name
	e := c.begin(kindDrain, id)
	var before int64
	for _, px := range c.replicas() {
		s, tu := backendCounts(c.t, px, id)
		before += s + tu
	}
	for _, px := range c.replicas() {
		if code, body := px.AdminPost(c.t, "/backends/"+id+"/drain?deadline=1s&rate=50"); code != http.StatusOK {
			c.t.Fatalf("%s: drain %s: %d %s", px.Name, id, code, body)
		}
	}
	e.mark(fmt.Sprintf("%d sessions+tunnels counted on it", before), 0)
	if !e.reachedWait("none left in either replica", c.waitAll("drain "+id, recoveryBudget, func(px *testkit.Proxy) bool {
		s, tu := backendCounts(c.t, px, id)
		return s == 0 && tu == 0
	})) {
		for _, px := range c.replicas() {
			s, tu := backendCounts(c.t, px, id)
			c.t.Logf("%s: %s still counts %d sessions and %d tunnels %v after the drain", px.Name, id, s, tu, e.since().Round(time.Millisecond))
		}
	}
	e.mark("every session acked again", waitAcked(c.t, ds, e.start, recoveryBudget, "drain "+id))
	return c.finish(e, 0)
}

// removeService reloads both replicas with SIGHUP to stop watching extraService; its (drained)
// backend leaves /backends after deregister_grace.
func (c *cluster) removeService() *event {
	e := c.begin(kindRemove, extraService)
	c.reload([]string{mainService})
	e.mark("reloaded", e.since())
	e.reached(c.extra.Name+" gone from both replicas", c.waitAll("remove "+extraService, 20*time.Second, c.stateIs(c.extra.Name, "")) >= 0)
	return c.finish(e, 0)
}
