package proxy

import (
	"sync"
	"time"

	"sioproxy/balancer"
	"sioproxy/sticky"
)

// ledger is the one owner of session bookkeeping: each session's entry in the session table and
// the Sessions and Tunnels counters of its backend. A session counts once, from one of three
// starts, and ends once, whichever path ends it:
//
//   - a handshake places it: the placement's claim counts it at once (so a burst of handshakes
//     spreads) and becomes its table entry when the open packet names its sid (learn);
//   - a sid that routes by its tag but that this process has not seen (another replica's, or this
//     process's before a restart) becomes an entry only once its backend has answered a poll or an
//     upgrade for it with success (adopt): a forged sid costs no entry and no count;
//   - a WebSocket-only session is its tunnel: the claim is held by the tunnel until it closes.
//
// Every entry ends through the table's eviction callback (a close packet, a 400, the end of the
// WebSocket it upgraded to, its TTL, a drain, its owner gone), which takes its count back.
type ledger struct {
	table *sticky.Table
	bal   *balancer.Balancer
	ended func(sid, backendID string) // after a session's entry is gone (mirror, logs)
}

func newLedger(now func() time.Time, bal *balancer.Balancer, ended func(sid, backendID string)) *ledger {
	l := &ledger{bal: bal, ended: ended}
	l.table = sticky.NewTable(now, l.evicted)
	return l
}

// evicted is the table's eviction callback: the one place an entry's count is taken back.
func (l *ledger) evicted(sid, backendID string) {
	if st := l.bal.Stats(backendID); st != nil {
		st.Sessions.Add(-1)
	}
	l.ended(sid, backendID)
}

// learn records the session a handshake created on be: the claim's count moves to the new table
// entry. It reports whether an entry was inserted; otherwise the claim is released.
func (l *ledger) learn(c *balancer.Claim, be *balancer.Backend, sid string, ttl time.Duration) bool {
	if l.table.PutIfAbsent(sid, be.ID, ttl) {
		c.Keep()
		return true
	}
	c.Release()
	return false
}

// adopt records a session this process routed by its sid tag and that be has just answered with
// success. Call it only for a sid resolve did not find in the table.
func (l *ledger) adopt(sid []byte, be *balancer.Backend, ttl time.Duration) {
	be.Sessions.Add(1) // before the entry exists, so that its eviction never sees the count at -1
	if !l.table.PutIfAbsent(string(sid), be.ID, ttl) {
		be.Sessions.Add(-1) // a concurrent request of the same session adopted it first
	}
}

// end ends the session of sid, if this process knows it.
func (l *ledger) end(sid []byte) { l.table.Delete(sid) }

// owner returns the backend of a table entry in snap; an entry whose backend left the snapshot
// ends here (its owner is gone), and owner returns nil.
func (l *ledger) owner(snap *balancer.Snapshot, backendID string, sid []byte) *balancer.Backend {
	be := snap.ByID(backendID)
	if be == nil {
		l.table.Delete(sid)
	}
	return be
}

// tunnelEntry is the bookkeeping of one live tunnel: its count in the backend's Tunnels, and the
// session it carries (the claim of a WebSocket-only session, or the raw sid of a polling session
// that upgraded). close runs once.
type tunnelEntry struct {
	l         *ledger
	stats     *balancer.Stats
	claim     balancer.Claim
	backendID string // for drains (closeBackend)
	sid       string
	order     *sticky.Order // the upgraded session's in-flight state (nil for a WebSocket-only one)
	start     time.Time
	once      sync.Once
}

// openTunnel counts a tunnel to be that is up. claim is the WebSocket-only session's (zero for an
// upgrade of a polling session, which has its table entry); the entry now owns it.
func (l *ledger) openTunnel(be *balancer.Backend, claim balancer.Claim, rawSID string, start time.Time) *tunnelEntry {
	be.Tunnels.Add(1)
	te := &tunnelEntry{l: l, stats: be.Stats, claim: claim, backendID: be.ID, sid: rawSID, start: start}
	if rawSID != "" {
		if _, o, ok := l.table.Lookup([]byte(rawSID)); ok {
			te.order = o
			o.TunnelOpened() // a drain closes this session by closing its tunnel, not with a poll
		}
	}
	return te
}

// close ends the tunnel's count and its session: a WebSocket-only session ends with it, and so
// does a polling session that had moved to it (no poll since the WebSocket opened, but for the
// last in-flight ones). A session that kept polling had a failed upgrade probe: it lives on.
func (te *tunnelEntry) close() {
	te.once.Do(func() {
		te.stats.Tunnels.Add(-1)
		te.order.TunnelClosed()
		te.claim.Release()
		if te.sid == "" {
			return
		}
		if seen, ok := te.l.table.LastSeen([]byte(te.sid)); ok && seen.Before(te.start.Add(upgradeSlack)) {
			te.l.table.Delete([]byte(te.sid))
		}
	})
}
