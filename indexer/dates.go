package indexer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// now is the clock for the two-digit-year pivot and the future-birth check; tests fix it.
var now = time.Now

var months = map[string]int{
	"jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
	"may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9,
	"sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11,
	"dec": 12, "december": 12,
}

// ParseDate reads a date as charts print it and returns it as YYYY-MM-DD. It accepts
// MM/DD/YYYY and M/D/YYYY (US order by default), MM-DD-YYYY, YYYY-MM-DD, DD.MM.YYYY,
// "14-Mar-1962", "14 Mar 1962", "March 14, 1962" and "Mar 14 1962". A two-digit year
// is in this century unless that would be in the future. Impossible dates are rejected.
func ParseDate(s string) (string, bool) {
	d, _, ok := parseDate(s)
	return d, ok
}

// parseDate is ParseDate that also says how sure the reading is: 1 for an unambiguous
// form, less for a two-digit year or a day/month order other than the default.
func parseDate(s string) (string, float64, bool) {
	s = strings.TrimSpace(s)
	s = strings.Trim(s, ",;:()[]")
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 40 {
		return "", 0, false
	}
	// A dash OCR read as a tilde or a long dash, or doubled ("04—-Apr-2015"), is a hyphen.
	if strings.ContainsAny(s, "~—–") {
		s = strings.NewReplacer("~", "-", "—", "-", "–", "-").Replace(s)
	}
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	if d, q, ok := parseDateAsIs(s); ok {
		return d, q, true
	}
	return repairDate(s)
}

// parseDateAsIs is parseDate on a string whose separators are already plain.
func parseDateAsIs(s string) (string, float64, bool) {
	// OCR puts stray spaces around separators: "03/14/ 1962".
	for _, sep := range []string{"/", "-", "."} {
		for strings.Contains(s, " "+sep) || strings.Contains(s, sep+" ") {
			s = strings.ReplaceAll(strings.ReplaceAll(s, " "+sep, sep), sep+" ", sep)
		}
	}
	if d, q, ok := parseNumericDate(s); ok {
		return d, q, true
	}
	if fixed, ok := foldDigitMisreads(s); ok {
		if d, q, ok := parseNumericDate(fixed); ok {
			return d, q * 0.85, true
		}
	}
	return parseWordDate(s)
}

// repairDate reads a date no form reads as printed when one repair of the two that a
// monospace lab printout's slashed or dotted zero causes makes it one: a zero read as
// two characters ("9@7-AUG-2013", "Q@6-JUN-1999": the first of a three-character day
// or month dropped), or as a nine, an eight or a six where none can be ("94-AUG-2013",
// "1994-99-02", "81/09/2016", "1990-67-12": a day or month of 9x, 8x or 6x is 0x).
// Only a repair that no other repair contradicts counts, at 0.7 of the repaired
// reading's confidence: the birth date that comes out is evidence read with doubt,
// never a certainty.
func repairDate(s string) (string, float64, bool) {
	// Split into fields and the separators between them.
	var fields []string
	var seps []string
	start := 0
	for i, r := range s {
		if r == '/' || r == '-' || r == '.' || r == ' ' || r == ',' {
			fields = append(fields, s[start:i])
			seps = append(seps, string(r))
			start = i + len(string(r))
		}
	}
	fields = append(fields, s[start:])
	if len(fields) < 3 || len(fields) > 4 {
		return "", 0, false
	}
	join := func(fs []string) string {
		var b strings.Builder
		for i, f := range fs {
			b.WriteString(f)
			if i < len(seps) {
				b.WriteString(seps[i])
			}
		}
		return b.String()
	}
	found, q, n := "", 0.0, 0
	try := func(fs []string) {
		if d, dq, ok := parseDateAsIs(join(fs)); ok && d != found {
			found, q = d, dq
			n++
		}
	}
	for i, f := range fields[:len(fields)-1] { // never the year at the end
		switch {
		case len(f) == 3 && !isMonthWord(f):
			fs := slices.Clone(fields)
			fs[i] = f[1:]
			try(fs)
		case len(f) == 2 && (f[0] == '9' || f[0] == '8' || f[0] == '6'):
			fs := slices.Clone(fields)
			fs[i] = "0" + f[1:]
			try(fs)
		}
	}
	if n != 1 {
		return "", 0, false
	}
	return found, q * 0.7, true
}

// isMonthWord reports whether s names a month ("Aug", "MAY").
func isMonthWord(s string) bool {
	_, ok := months[strings.ToLower(s)]
	return ok
}

// digitMisreads are the characters OCR reads for digits in numbers ("Q7/09/2005",
// "@1/04/2021", "O3/l4/1962").
var digitMisreads = map[rune]rune{'O': '0', 'o': '0', 'Q': '0', 'q': '0', 'D': '0', '@': '0', 'l': '1', 'I': '1',
	'|': '1', 'i': '1', 'S': '5', 's': '5', 'B': '8', 'b': '8', 'Z': '2', 'z': '2', 'G': '6'}

// foldDigitMisreads reads the digit misreads of a numeric date as the digits, when the
// date has at least six real digits and at most two misreads; ok is false otherwise.
func foldDigitMisreads(s string) (string, bool) {
	digits, fixes := 0, 0
	out := []rune(s)
	for i, r := range out {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '/' || r == '-' || r == '.':
		default:
			d, ok := digitMisreads[r]
			if !ok {
				return "", false
			}
			out[i] = d
			fixes++
		}
	}
	return string(out), fixes > 0 && fixes <= 2 && digits >= 6
}

// parseNumericDate reads dates made of three numbers with one kind of separator.
func parseNumericDate(s string) (string, float64, bool) {
	var sep rune
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '/' || r == '-' || r == '.':
			if sep != 0 && r != sep {
				return "", 0, false
			}
			sep = r
		default:
			return "", 0, false
		}
	}
	parts := strings.Split(s, string(sep))
	if sep == 0 || len(parts) != 3 {
		return "", 0, false
	}
	for _, p := range parts {
		if p == "" {
			return "", 0, false
		}
	}
	if len(parts[0]) == 4 {
		if len(parts[1]) > 2 || len(parts[2]) > 2 {
			return "", 0, false
		}
		return makeDate(parts[0], parts[1], parts[2], 1)
	}
	if len(parts[0]) > 2 || len(parts[1]) > 2 {
		return "", 0, false
	}
	first, second := parts[0], parts[1]
	a, _ := strconv.Atoi(first)
	b, _ := strconv.Atoi(second)
	q := 1.0
	// Dots mean day first; slashes and hyphens mean US month first. When the default
	// order cannot be a date but the other one can, the other one is unambiguous.
	dayFirst := sep == '.'
	if dayFirst && b > 12 && a <= 12 || !dayFirst && a > 12 && b <= 12 {
		dayFirst = !dayFirst
		q = 0.9
	}
	if dayFirst {
		return makeDate(parts[2], second, first, q)
	}
	return makeDate(parts[2], first, second, q)
}

// parseWordDate reads dates whose month is a word: "14-Mar-1962", "March 14, 1962".
func parseWordDate(s string) (string, float64, bool) {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return unicode.IsSpace(r) || r == ',' || r == '-' || r == '/' || r == '.'
	})
	if len(f) != 3 {
		return "", 0, false
	}
	if m, ok := months[f[1]]; ok {
		d, y, q := foldNumber(stripOrdinal(f[0]), f[2])
		return makeDate(y, strconv.Itoa(m), d, q)
	}
	if m, ok := months[f[0]]; ok {
		d, y, q := foldNumber(stripOrdinal(f[1]), f[2])
		return makeDate(y, strconv.Itoa(m), d, q)
	}
	return "", 0, false
}

// foldNumber reads the digit misreads in a word date's day and year as digits
// ("@2-NOV-1988"), at most one in each; q is how sure the reading then is.
func foldNumber(day, year string) (string, string, float64) {
	q := 1.0
	fold := func(s string) string {
		digits, fixes := 0, 0
		out := []rune(s)
		for i, r := range out {
			if r >= '0' && r <= '9' {
				digits++
				continue
			}
			d, ok := digitMisreads[r]
			if !ok {
				return s
			}
			out[i] = d
			fixes++
		}
		if fixes == 0 || fixes > 1 || digits == 0 {
			return s
		}
		q = 0.85
		return string(out)
	}
	return fold(day), fold(year), q
}

func stripOrdinal(s string) string {
	for _, suf := range []string{"st", "nd", "rd", "th"} {
		if t, ok := strings.CutSuffix(s, suf); ok && t != "" {
			return t
		}
	}
	return s
}

// makeDate validates year, month and day (as digits) and formats them.
func makeDate(ys, ms, ds string, q float64) (string, float64, bool) {
	if len(ms) > 2 || len(ds) > 2 || (len(ys) != 2 && len(ys) != 4) {
		return "", 0, false
	}
	y, err1 := strconv.Atoi(ys)
	m, err2 := strconv.Atoi(ms)
	d, err3 := strconv.Atoi(ds)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", 0, false
	}
	if len(ys) == 2 {
		y += 2000
		if y > now().Year() {
			y -= 100
		}
		q *= 0.85
	}
	if y < 1850 || y > 2199 || m < 1 || m > 12 || d < 1 {
		return "", 0, false
	}
	if d > time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return "", 0, false
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d), q, true
}

// isISODate reports whether s is a valid YYYY-MM-DD date.
func isISODate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// isPartialDate reports whether s is a date known only to the year or the month, as
// FHIR and EMPIs write them for patients whose exact birth date is unknown: YYYY or
// YYYY-MM, in the years ParseDate accepts.
func isPartialDate(s string) bool {
	if (len(s) != 4 && len(s) != 7) || !onlyDigits(s[:4]) {
		return false
	}
	if y, _ := strconv.Atoi(s[:4]); y < 1850 || y > 2199 {
		return false
	}
	if len(s) == 4 {
		return true
	}
	m, err := strconv.Atoi(s[5:])
	return s[4] == '-' && onlyDigits(s[5:]) && err == nil && m >= 1 && m <= 12
}

// parseBirthDate reads an EMPI record's birth date: a whole date as parse reads it, or
// a partial one (YYYY, YYYY-MM), kept as it is.
func parseBirthDate(parse func(string) (string, bool)) func(string) (string, bool) {
	return func(s string) (string, bool) {
		if isPartialDate(s) {
			return s, true
		}
		return parse(s)
	}
}

// parseDateTokens reads a date from the start of toks, trying the longest run first so
// "March 14, 1962" is read whole, and returns how many tokens it used.
func parseDateTokens(toks []token) (string, int, float64, bool) {
	for n := min(len(toks), 4); n > 0; n-- {
		parts := make([]string, n)
		for i := range n {
			parts[i] = toks[i].text
		}
		if d, q, ok := parseDate(strings.Join(parts, " ")); ok {
			return d, n, q, true
		}
	}
	return "", 0, 0, false
}
