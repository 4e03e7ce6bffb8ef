package health

// threshold turns probe results into an up/down state with HAProxy-style rise and fall
// counts: fall consecutive failures take an up target down, rise consecutive successes
// bring a down target up. A target starts up.
type threshold struct {
	rise, fall int
	up         bool
	streak     int // consecutive results against the current state
}

func newThreshold(rise, fall int) threshold {
	return threshold{rise: max(rise, 1), fall: max(fall, 1), up: true}
}

// observe records one result and reports whether the state flipped.
func (t *threshold) observe(ok bool) bool {
	if ok == t.up {
		t.streak = 0
		return false
	}
	t.streak++
	need := t.fall
	if !t.up {
		need = t.rise
	}
	if t.streak < need {
		return false
	}
	t.up, t.streak = ok, 0
	return true
}
