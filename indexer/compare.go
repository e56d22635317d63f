package indexer

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/adrg/strutil/metrics"
)

// jaroWinkler is the string metric of the name bands; names are compared normalized
// (NormalizeName), so case does not matter.
var jaroWinkler = &metrics.JaroWinkler{CaseSensitive: true}

// compareMRN grades a page's MRN against a record's, both normalized. A variant is
// check_digit_repaired only when the page's MRN fails the facility's check and the
// record's passes it: the record exists (it is a candidate) and is the repair. Any other
// variant is merely OCR-confusable. A page's MRN that fails the check while the record's
// passes, and is no variant of it, is missing: a misread that names no one.
func compareMRN(page, rec, scheme string) string {
	switch {
	case page == "" || rec == "":
		return LevelMissing
	case page == rec:
		return LevelExact
	case !isMRNVariant(page, rec) && scheme != "none" && scheme != "" && !CheckDigitValid(scheme, page) && CheckDigitValid(scheme, rec):
		// A reading that fails the check every MRN of the EMPI passes is a misread (a
		// digit OCR got wrong beyond the confusions modelled, one added or lost): it
		// names no patient, so it says nothing against this one. The page is then
		// decided by its name and birth date, as a page without an MRN is.
		return LevelMissing
	case !isMRNVariant(page, rec):
		return LevelDisagree
	case scheme != "none" && scheme != "" && !CheckDigitValid(scheme, page) && CheckDigitValid(scheme, rec):
		return LevelCheckDigitRepaired
	}
	return LevelOCRConfusable
}

// compareName grades one normalized name part against another.
func compareName(a, b string) string {
	switch {
	case a == "" || b == "":
		return LevelMissing
	case a == b:
		return LevelExact
	case isInitial(a) || isInitial(b):
		// An initial fits or it does not; Jaro–Winkler on one letter means nothing.
		ra, _ := utf8.DecodeRuneInString(a)
		rb, _ := utf8.DecodeRuneInString(b)
		if ra == rb {
			return LevelInitial
		}
		return LevelDisagree
	}
	switch jw := jaroWinkler.Compare(a, b); {
	case jw >= 0.92:
		return LevelJW92
	case jw >= 0.85, typingSlip(a, b):
		return LevelJW85
	}
	if NYSIIS(a) == NYSIIS(b) {
		return LevelPhonetic
	}
	return LevelDisagree
}

// typingSlip reports whether two names of at least four letters are one of the slips of
// a keyboard or a registration clerk that Jaro–Winkler grades below 0.85 although the
// letters are the same: made of the same letters but for one added or dropped, and at
// most two edits apart (insert, delete, replace or swap two neighbours) in names of five
// letters or more — "Olivia" and "Ilivoa", "Taylor" and "Atlylor" —, one edit in names of
// four. One letter replaced by another counts only in names of five letters or more
// ("Amber", "Amrbr"). Short names two edits apart are as often other names ("Omar" and
// "Mora", "Lina" and "Ilan"). It grades like the Jaro–Winkler 0.85 band:
// no evidence for the given name, about one bit for the family name; what it changes is
// that such a name no longer vetoes a filing on its own.
func typingSlip(a, b string) bool {
	ra, rb := []rune(a), []rune(b)
	short := min(len(ra), len(rb))
	if short < 4 || osaDistance(ra, rb) > min(short-3, 2) {
		return false
	}
	count := map[rune]int{}
	for _, r := range ra {
		count[r]++
	}
	for _, r := range rb {
		count[r]--
	}
	extra, missing := 0, 0
	for _, n := range count {
		if n > 0 {
			extra += n
		} else {
			missing -= n
		}
	}
	switch {
	case extra+missing <= 1:
		return true // the same letters, or one added or dropped
	case extra == 1 && missing == 1:
		return short >= 5 // one letter replaced
	}
	return false
}

// osaDistance is the optimal string alignment distance: insertions, deletions,
// replacements and swaps of neighbours, each counting one.
func osaDistance(a, b []rune) int {
	// Three rows of the table at a time (a swap looks two rows back), in one allocation.
	w := len(b) + 1
	rows := make([]int, 3*w)
	prev2, prev, cur := rows[:w], rows[w:2*w], rows[2*w:]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// compareNames grades family and given names, page against record, all normalized. A
// page whose family name is the record's given name and the other way round scores both
// as swapped.
func compareNames(family, given, recFamily, recGiven string) (fam, giv string) {
	if family != "" && given != "" && family != recFamily && family == recGiven && given == recFamily {
		return LevelSwapped, LevelSwapped
	}
	fam, giv = compareName(family, recFamily), compareName(given, recGiven)
	// Swapped with a typo: the names fit only the other way round (registrations swap
	// first and last names; OCR adds a slip). Read the other way round, they must meet
	// the bar names read the right way round meet — neither differs (at least the
	// Jaro–Winkler 0.85 band) — and one of them must be close (exact or 0.92), so that
	// two typos and a swap together never pass for the same person.
	if family != "" && given != "" && fam == LevelDisagree && giv == LevelDisagree {
		close := func(l string) bool { return l == LevelExact || l == LevelJW92 }
		fits := func(l string) bool { return close(l) || l == LevelJW85 }
		sf, sg := compareName(family, recGiven), compareName(given, recFamily)
		if fits(sf) && fits(sg) && (close(sf) || close(sg)) {
			return LevelSwapped, LevelSwapped
		}
	}
	return fam, giv
}

// compareDOB grades two YYYY-MM-DD dates. Either may be a record's partial date (YYYY or
// YYYY-MM): it agrees with a date in the same year (and month, when it has one) at most
// as LevelYearOnly, since the day it lacks is where a whole date would show agreement,
// and disagrees with any other.
func compareDOB(a, b string) string {
	if a == "" || b == "" {
		return LevelMissing
	}
	if len(a) < len(time.DateOnly) || len(b) < len(time.DateOnly) {
		return comparePartialDOB(a, b)
	}
	if a == b {
		return LevelExact
	}
	ta, err1 := time.Parse(time.DateOnly, a)
	tb, err2 := time.Parse(time.DateOnly, b)
	if err1 != nil || err2 != nil {
		return LevelDisagree
	}
	switch {
	case a[:4] == b[:4] && a[5:7] == b[8:10] && a[8:10] == b[5:7]:
		return LevelDayMonthSwapped
	case ta.Sub(tb) == 24*time.Hour || tb.Sub(ta) == 24*time.Hour:
		return LevelOneDay
	case digitsApart(a, b) == 1:
		return LevelOneDigit
	case a[:4] == b[:4]:
		return LevelYearOnly
	}
	return LevelDisagree
}

// comparePartialDOB grades two dates of which one at least is partial.
func comparePartialDOB(a, b string) string {
	for _, d := range []string{a, b} {
		if !isPartialDate(d) && !isISODate(d) {
			return LevelDisagree
		}
	}
	if n := min(len(a), len(b)); a[:n] == b[:n] {
		return LevelYearOnly
	}
	return LevelDisagree
}

// digitsApart counts the positions at which two equally long strings differ.
func digitsApart(a, b string) int {
	if len(a) != len(b) {
		return len(a) + len(b)
	}
	n := 0
	for i := range len(a) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// compareExact grades two normalized values that agree only when equal.
func compareExact(a, b string) string {
	switch {
	case a == "" || b == "":
		return LevelMissing
	case a == b:
		return LevelExact
	}
	return LevelDisagree
}

// compareStreet grades two normalized street lines: house numbers and abbreviations
// differ in small ways ("12 Main St" / "12 Main Street").
func compareStreet(a, b string) string {
	if l := compareExact(a, b); l != LevelDisagree {
		return l
	}
	if jaroWinkler.Compare(a, b) >= 0.92 {
		return LevelJW92
	}
	return LevelDisagree
}

// normalizeStreet keeps letters and digits of a street line, lower case, single-spaced.
func normalizeStreet(s string) string {
	var words []string
	for _, w := range strings.Fields(s) {
		if k := NormalizeName(w); k != "" {
			words = append(words, k)
		}
	}
	return strings.Join(words, " ")
}

// normalizePostcode keeps the letters and digits of a postcode, and only the first five
// of a US ZIP+4, which records often hold without the extension.
func normalizePostcode(s string) string {
	k := strings.ToUpper(NormalizeName(s))
	if len(k) == 9 && onlyDigits(k) {
		k = k[:5]
	}
	return k
}

// normalizePhone keeps the last ten digits of a phone number, so a country code or
// punctuation does not matter; fewer than seven digits is no phone number.
func normalizePhone(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	if len(d) < 7 {
		return ""
	}
	if len(d) > 10 {
		d = d[len(d)-10:]
	}
	return d
}

func onlyDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// CheckDigitValid reports whether an MRN passes the check-digit scheme: "luhn" (mod 10
// over the digits, the last one the check digit; a non-digit fails) or "none" (always
// true). An unknown scheme validates nothing, so a typo in configuration repairs nothing.
func CheckDigitValid(scheme, mrn string) bool {
	switch scheme {
	case "none", "":
		return true
	case "luhn":
		mrn = NormalizeMRN(mrn)
		if len(mrn) < 2 || !onlyDigits(mrn) {
			return false
		}
		sum := 0
		for i := range len(mrn) {
			d := int(mrn[len(mrn)-1-i] - '0')
			if i%2 == 1 {
				d *= 2
				if d > 9 {
					d -= 9
				}
			}
			sum += d
		}
		return sum%10 == 0
	}
	return false
}

// confusions are the characters OCR mistakes for each other, in groups.
var confusions = []string{"0ODQ", "1LI7", "2Z", "5S", "6G", "8B"}

// digitConfusions are pairs of digits that OCR of degraded print (and a hurried hand)
// mistakes for each other: closed loops filled or broken (0/8, 3/8, 6/8, 5/6, 0/6, 0/9),
// a stroke lost (1/7, 2/7, 4/9). Under a check-digit scheme they cost nothing in safety:
// a variant is used only when it passes the check and exists in the EMPI.
var digitConfusions = []string{"08", "38", "68", "56", "06", "09", "17", "27", "49"}

// confusable maps each character to the others it is confused with.
var confusable = func() map[byte]string {
	out := map[byte]string{}
	add := func(a, b byte) {
		if strings.IndexByte(out[a], b) < 0 {
			out[a] += string(b)
		}
	}
	for _, g := range confusions {
		for i := range len(g) {
			for j := range len(g) {
				if i != j {
					add(g[i], g[j])
				}
			}
		}
	}
	for _, p := range digitConfusions {
		add(p[0], p[1])
		add(p[1], p[0])
	}
	return out
}()

// MRNVariants returns the MRNs one OCR confusion (0/O/D/Q, 1/l/I/7, 2/Z, 5/S, 6/G, 8/B,
// and the digit pairs of digitConfusions) or one adjacent transposition away from mrn, for the candidate search: the caller looks
// them up in the EMPI. Under a check-digit scheme only variants that pass it are
// returned, since no real MRN fails it; under "none" all are. mrn itself is not among
// them, and the order is stable.
func MRNVariants(mrn, scheme string) []string {
	mrn = NormalizeMRN(mrn)
	seen := map[string]bool{mrn: true}
	var out []string
	add := func(v string) {
		if !seen[v] && CheckDigitValid(scheme, v) {
			seen[v] = true
			out = append(out, v)
		}
	}
	b := []byte(mrn)
	for i := range b {
		orig := b[i]
		for _, r := range []byte(confusable[orig]) {
			b[i] = r
			add(string(b))
		}
		b[i] = orig
	}
	for i := 0; i+1 < len(b); i++ {
		if b[i] != b[i+1] {
			b[i], b[i+1] = b[i+1], b[i]
			add(string(b))
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	return out
}

// isMRNVariant reports whether b is one confusion or one adjacent transposition from a.
func isMRNVariant(a, b string) bool {
	if len(a) != len(b) || a == b {
		return false
	}
	var diff []int
	for i := range len(a) {
		if a[i] != b[i] {
			diff = append(diff, i)
			if len(diff) > 2 {
				return false
			}
		}
	}
	if len(diff) == 1 {
		return strings.IndexByte(confusable[a[diff[0]]], b[diff[0]]) >= 0
	}
	i, j := diff[0], diff[1]
	return j == i+1 && a[i] == b[j] && a[j] == b[i]
}

// NYSIIS returns the New York State Identification and Intelligence System phonetic
// code of a name (Taft 1970, truncated to six letters as in the original), used for the
// phonetic name level and as a blocking key: "Knuth" → "NAT", "MacIntosh" → "MCANT".
// Letters outside A–Z are dropped after folding diacritics.
func NYSIIS(name string) string {
	norm := NormalizeName(name)
	b := make([]byte, 0, len(norm))
	for _, r := range norm {
		if r = unicode.ToUpper(r); r >= 'A' && r <= 'Z' {
			b = append(b, byte(r))
		}
	}
	if len(b) == 0 {
		return ""
	}
	s := string(b)
	for _, p := range [][2]string{{"MAC", "MCC"}, {"KN", "NN"}, {"K", "C"}, {"PH", "FF"}, {"PF", "FF"}, {"SCH", "SSS"}} {
		if strings.HasPrefix(s, p[0]) {
			s = p[1] + s[len(p[0]):]
			break
		}
	}
	for _, p := range [][2]string{{"EE", "Y"}, {"IE", "Y"}, {"DT", "D"}, {"RT", "D"}, {"RD", "D"}, {"NT", "D"}, {"ND", "D"}} {
		if strings.HasSuffix(s, p[0]) {
			s = s[:len(s)-len(p[0])] + p[1]
			break
		}
	}
	n := []byte(s)
	key := []byte{n[0]}
	vowel := func(c byte) bool { return strings.IndexByte("AEIOU", c) >= 0 }
	for i := 1; i < len(n); i++ {
		next := byte(0)
		if i+1 < len(n) {
			next = n[i+1]
		}
		switch c := n[i]; {
		case c == 'E' && next == 'V':
			n[i], n[i+1] = 'A', 'F'
		case vowel(c):
			n[i] = 'A'
		case c == 'Q':
			n[i] = 'G'
		case c == 'Z':
			n[i] = 'S'
		case c == 'M':
			n[i] = 'N'
		case c == 'K' && next == 'N':
			n[i] = 'N'
		case c == 'K':
			n[i] = 'C'
		case c == 'S' && next == 'C' && i+2 < len(n) && n[i+2] == 'H':
			n[i+1], n[i+2] = 'S', 'S'
		case c == 'P' && next == 'H':
			n[i], n[i+1] = 'F', 'F'
		case c == 'H' && (!vowel(n[i-1]) || !vowel(next)):
			n[i] = n[i-1]
		case c == 'W' && vowel(n[i-1]):
			n[i] = n[i-1]
		}
		if n[i] != key[len(key)-1] {
			key = append(key, n[i])
		}
	}
	if len(key) > 1 && key[len(key)-1] == 'S' {
		key = key[:len(key)-1]
	}
	if len(key) > 2 && string(key[len(key)-2:]) == "AY" {
		key = append(key[:len(key)-2], 'Y')
	}
	if len(key) > 1 && key[len(key)-1] == 'A' {
		key = key[:len(key)-1]
	}
	if len(key) > 6 {
		key = key[:6]
	}
	return string(key)
}
