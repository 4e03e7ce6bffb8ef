package admin

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"
)

// Defaults of the dashboard's history.
const (
	DefaultHistorySamples  = 300 // five minutes at one sample a second
	DefaultHistoryBackends = 256 // backends whose sessions are kept; more are shown live only
)

// BackendCount is one backend's live session count at a sample.
type BackendCount struct {
	ID       string
	Sessions int64
}

// History is a bounded ring of samples: each backend's sessions and the increments of the incident
// counters (Counts) since the previous sample. Its memory is fixed by its size: 4 bytes per sample
// and tracked backend, 24 per sample for the rest. A backend absent from every sample in the ring
// is forgotten. It is safe for concurrent use.
type History struct {
	mu          sync.Mutex
	size        int
	maxBackends int
	seq         uint64  // number of the newest sample; 0: none yet
	times       []int64 // unix ms, by slot
	deltas      [4][]uint32
	series      map[string]*series
	last        Counts
}

// series is one backend's sessions, by slot; -1 where the backend was absent.
type series struct {
	vals []int32
	seen uint64 // newest sample the backend was in
}

// NewHistory returns a History of size samples (at least 2) keeping at most maxBackends backends.
func NewHistory(size, maxBackends int) *History {
	size = max(size, 2)
	h := &History{size: size, maxBackends: maxBackends, times: make([]int64, size), series: map[string]*series{}}
	for i := range h.deltas {
		h.deltas[i] = make([]uint32, size)
	}
	return h
}

// Record adds a sample taken at at: the sessions of the backends present and the counter totals.
// The first sample's increments are 0 (there is nothing to compare it with).
func (h *History) Record(at time.Time, backends []BackendCount, c Counts) {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.seq == 0
	h.seq++
	slot := h.slot(h.seq)
	h.times[slot] = at.UnixMilli()
	for i, v := range [4][2]uint64{
		{c.Handshakes, h.last.Handshakes}, {c.SIDUnknown, h.last.SIDUnknown},
		{c.Unavailable, h.last.Unavailable}, {c.Reloads, h.last.Reloads},
	} {
		var d uint64
		if !first && v[0] > v[1] {
			d = min(v[0]-v[1], 1<<32-1)
		}
		h.deltas[i][slot] = uint32(d)
	}
	h.last = c
	for _, b := range backends {
		s := h.series[b.ID]
		if s == nil {
			if len(h.series) >= h.maxBackends {
				continue
			}
			s = &series{vals: make([]int32, h.size)}
			for i := range s.vals {
				s.vals[i] = -1
			}
			h.series[b.ID] = s
		}
		s.vals[slot] = int32(min(max(b.Sessions, 0), 1<<31-1))
		s.seen = h.seq
	}
	for id, s := range h.series {
		if s.seen == h.seq {
			continue
		}
		s.vals[slot] = -1
		if h.seq-s.seen >= uint64(h.size) {
			delete(h.series, id)
		}
	}
}

// slot is the index of sample number seq in the ring.
func (h *History) slot(seq uint64) int { return int(seq % uint64(h.size)) }

// oldest is the number of the oldest sample the ring holds (1 before it has wrapped).
func (h *History) oldest() uint64 {
	if h.seq >= uint64(h.size) {
		return h.seq - uint64(h.size) + 1
	}
	return 1
}

// HistoryView is the part of a History after a given sample, oldest first.
type HistoryView struct {
	Seq         uint64            `json:"seq"`         // the newest sample's number: pass it back as since
	From        uint64            `json:"from"`        // the first sample's number here (Seq+1 when there is none)
	Times       []int64           `json:"t"`           // unix ms of each sample
	Sessions    map[string]Series `json:"sessions"`    // per backend id; null where the backend was absent
	Handshakes  []uint32          `json:"handshakes"`  // sessions created since the previous sample
	SIDUnknown  []uint32          `json:"sid_unknown"` // "Session ID unknown" answers since the previous sample
	Unavailable []uint32          `json:"unavailable"` // 503s to new sessions since the previous sample
	Reloads     []uint32          `json:"reloads"`     // config reloads since the previous sample
}

// Series is one backend's sessions per sample; -1 (null in JSON) where it was absent.
type Series []int32

// MarshalJSON writes the series as an array with null for absent samples.
func (s Series) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+4*len(s))
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if v < 0 {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendInt(b, int64(v), 10)
		}
	}
	return append(b, ']'), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Series) UnmarshalJSON(b []byte) error {
	var vs []*int32
	if err := json.Unmarshal(b, &vs); err != nil {
		return err
	}
	*s = make(Series, len(vs))
	for i, v := range vs {
		(*s)[i] = -1
		if v != nil {
			(*s)[i] = *v
		}
	}
	return nil
}

var (
	_ json.Marshaler   = Series(nil)
	_ json.Unmarshaler = (*Series)(nil)
)

// Since returns the samples after since. A since the History does not know (older than the ring,
// or newer than its newest sample, as after a restart of the process) gets the whole ring, so a
// caller whose View.From is not its since+1 replaces what it has.
func (h *History) Since(since uint64) HistoryView {
	h.mu.Lock()
	defer h.mu.Unlock()
	oldest := h.oldest()
	from := since + 1
	if since > h.seq || from < oldest {
		from = oldest
	}
	n := 0
	if h.seq >= from {
		n = int(h.seq - from + 1)
	}
	v := HistoryView{Seq: h.seq, From: from, Times: make([]int64, n), Sessions: map[string]Series{},
		Handshakes: make([]uint32, n), SIDUnknown: make([]uint32, n), Unavailable: make([]uint32, n), Reloads: make([]uint32, n)}
	if n == 0 {
		v.From = h.seq + 1
	}
	cols := [4][]uint32{v.Handshakes, v.SIDUnknown, v.Unavailable, v.Reloads}
	for id, s := range h.series {
		if s.seen < from {
			continue
		}
		out := make(Series, n)
		for i := range n {
			out[i] = s.vals[h.slot(from+uint64(i))]
		}
		v.Sessions[id] = out
	}
	for i := range n {
		slot := h.slot(from + uint64(i))
		v.Times[i] = h.times[slot]
		for c := range cols {
			cols[c][i] = h.deltas[c][slot]
		}
	}
	return v
}

// Rates returns the increments per second of the counters over the samples of the last window
// (per second of the time they cover), and the reloads in the whole ring.
func (h *History) Rates(window time.Duration) Rates {
	h.mu.Lock()
	defer h.mu.Unlock()
	var r Rates
	if h.seq < 2 {
		return r
	}
	newest := h.times[h.slot(h.seq)]
	oldest := h.oldest()
	var sums [4]uint64
	start := newest
	for k := h.seq; k > oldest; k-- {
		slot := h.slot(k)
		prev := h.times[h.slot(k-1)]
		if newest-prev > window.Milliseconds() && start != newest {
			break
		}
		for c := range sums {
			sums[c] += uint64(h.deltas[c][slot])
		}
		start = prev
	}
	for k := oldest; k <= h.seq; k++ {
		r.Reloads += uint64(h.deltas[3][h.slot(k)])
	}
	if secs := float64(newest-start) / 1000; secs > 0 {
		r.WindowSeconds = secs
		r.Handshakes = float64(sums[0]) / secs
		r.SIDUnknown = float64(sums[1]) / secs
		r.Unavailable = float64(sums[2]) / secs
	}
	return r
}

// Rates are incident rates over the last few samples.
type Rates struct {
	WindowSeconds float64 `json:"window_s"`    // the time the rates cover
	Handshakes    float64 `json:"handshakes"`  // sessions created per second
	SIDUnknown    float64 `json:"sid_unknown"` // "Session ID unknown" answers per second
	Unavailable   float64 `json:"unavailable"` // 503s to new sessions per second
	Reloads       uint64  `json:"reloads"`     // config reloads over the whole history
}
