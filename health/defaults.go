package health

import "time"

// orDefault sets *v to d when *v is zero or negative (an option left unset).
func orDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}
