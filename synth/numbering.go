package synth

import (
	"fmt"
	"math/rand/v2"
)

// PageNumbering is how a page prints its number in its document.
type PageNumbering int

// Page numbering styles, shown for the second page of three. The zero value is the
// footer of earlier versions.
const (
	NumberPage   PageNumbering = iota // Page 2
	NumberPageOf                      // Page 2 of 3
	NumberPg                          // Pg 2/3
	NumberOf                          // 2 of 3
	NumberNone                        // nothing printed
)

// numberText returns the page number spec prints, "" for none. A PageCount below the
// page's number is taken as unknown and the page counted as the last.
func (spec PageSpec) numberText() string {
	k := max(spec.PageNumber, 1)
	n := max(spec.PageCount, k)
	switch spec.Numbering {
	case NumberPageOf:
		return fmt.Sprintf("Page %d of %d", k, n)
	case NumberPg:
		return fmt.Sprintf("Pg %d/%d", k, n)
	case NumberOf:
		return fmt.Sprintf("%d of %d", k, n)
	case NumberNone:
		return ""
	}
	return fmt.Sprintf("Page %d", k)
}

// drawNumbering draws the numbering of one printed document, as often as forms use each:
// "Page k of N" most, then "Page k", none, "k of N" and "Pg k/N"; footer right more
// often than header right.
func drawNumbering(rng *rand.Rand) (PageNumbering, bool) {
	var n PageNumbering
	switch u := rng.Float64(); {
	case u < 0.45:
		n = NumberPageOf
	case u < 0.60:
		n = NumberPage
	case u < 0.75:
		n = NumberNone
	case u < 0.88:
		n = NumberOf
	default:
		n = NumberPg
	}
	return n, rng.Float64() < 0.3
}
