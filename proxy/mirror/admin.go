package mirror

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Handler serves the mirror's admin endpoints (mount them on the admin listener, behind its auth):
//
//	GET  /mirror/report                  the Report as JSON
//	POST /mirror/enable[?sample=F]       turn sampling of new sessions on (and set the fraction)
//	POST /mirror/disable                 turn it off; mirrored sessions go on until they end
//
// enable and disable answer {"enabled":B,"sample":F}.
func (m *Mirror) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mirror/report", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, m.Report())
	})
	mux.HandleFunc("POST /mirror/enable", func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("sample"); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) { // NaN fails both
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "sample: want a number between 0 and 1"})
				return
			}
			m.SetSample(f)
		}
		m.Enable(true)
		writeJSON(w, http.StatusOK, m.state())
	})
	mux.HandleFunc("POST /mirror/disable", func(w http.ResponseWriter, _ *http.Request) {
		m.Enable(false)
		writeJSON(w, http.StatusOK, m.state())
	})
	return mux
}

type state struct {
	Enabled bool    `json:"enabled"`
	Sample  float64 `json:"sample"`
}

func (m *Mirror) state() state { return state{m.Enabled(), m.Sample()} }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
