package indexer

import (
	"iter"
	"slices"
	"strings"

	"github.com/chartscan/chartscan"
)

// Pseudo-kinds for forms that print the two halves of a name in separate fields; Extract
// joins them into one KindName identifier.
const (
	kindFamily chartscan.IdentifierKind = "family"
	kindGiven  chartscan.IdentifierKind = "given"
)

// labelDef is one way a form labels a field.
type labelDef struct {
	kind chartscan.IdentifierKind
	key  string // the label's letters and digits, lower case: "dateofbirth"
	// weak labels are ordinary words too ("Patient", "Born", "Date"); they count only
	// when followed by ':' or '#', or when they start a field (line start, wide gap).
	weak bool
	// factor is how much a value found behind this label is worth, before OCR confidence.
	factor float64
}

func def(kind chartscan.IdentifierKind, weak bool, factor float64, phrases ...string) []labelDef {
	out := make([]labelDef, 0, len(phrases))
	for _, p := range phrases {
		out = append(out, labelDef{kind: kind, key: keyOf(p), weak: weak, factor: factor})
	}
	return out
}

// labels are all the labels Extract knows. Punctuation is irrelevant: labels match on keys.
var labels = slices.Concat(
	def(chartscan.KindMRN, false, 1, "MRN", "Med Rec", "Med Rec No", "Med Rec Number",
		"Medical Record Number", "Medical Record No", "Medical Record", "Med Record No", "Med Record Number"),
	def(chartscan.KindMRN, false, 1, "MR Number", "MR No", "MRN No", "MRN Number", "Medical Record ID"),
	def(chartscan.KindMRN, false, 0.9, "Patient ID", "Pt ID", "Patient ID No", "Unit No", "Unit Number", "Chart No", "Chart Number",
		"Hospital No", "Hospital Number", "Hosp No", "UR No", "UR Number", "URN", "Patient No", "Patient Number", "Record No", "Record Number"),
	// "MR" is also "Mr." and "Chart" a common word: they need their '#' or ':'.
	def(chartscan.KindMRN, true, 0.95, "MR"),
	def(chartscan.KindMRN, true, 0.85, "Chart"),

	def(chartscan.KindName, false, 1, "Patient Name", "Pt Name", "Patient Full Name"),
	def(chartscan.KindName, true, 0.9, "Patient"),
	def(chartscan.KindName, true, 0.8, "Name"),
	def(kindFamily, false, 0.95, "Last Name", "Family Name", "Surname"),
	def(kindGiven, false, 0.95, "First Name", "Given Name"),

	def(chartscan.KindDOB, false, 1, "DOB", "Date of Birth", "Birth Date", "Birthdate", "Pt DOB", "Patient DOB"),
	def(chartscan.KindDOB, true, 0.85, "Born"),

	def(chartscan.KindSex, true, 1, "Sex", "Gender", "Sex Gender"),

	def(chartscan.KindDateOfService, false, 1, "Date of Service", "Service Date", "Visit Date",
		"Encounter Date", "Date of Visit", "Date of Encounter"),
	def(chartscan.KindDateOfService, false, 0.9, "Admission Date", "Admit Date", "Date of Admission",
		"Procedure Date", "Date of Procedure", "Report Date", "Date of Report", "Collection Date", "Date Collected"),
	// "Dos" is also part of names ("Maria dos Santos").
	def(chartscan.KindDateOfService, true, 1, "DOS"),
	def(chartscan.KindDateOfService, true, 0.85, "Collected"),
	def(chartscan.KindDateOfService, true, 0.6, "Date"),
)

// notPatientName are words that, before "Name", make it someone else's name.
var notPatientName = map[string]bool{
	"physician": true, "provider": true, "doctor": true, "dr": true, "attending": true,
	"contact": true, "guarantor": true, "insured": true, "subscriber": true, "mother": true,
	"mothers": true, "father": true, "fathers": true, "spouse": true, "guardian": true,
	"nurse": true, "rn": true, "facility": true, "hospital": true, "company": true,
	"employer": true, "referring": true, "witness": true, "parent": true, "parents": true,
	"emergency": true, "relative": true, "insurance": true, "plan": true, "pharmacy": true,
	"clinic": true, "practice": true, "user": true, "staff": true, "surgeon": true,
	"anesthesiologist": true, "interpreter": true, "representative": true, "print": true,
	"printed": true, "sponsor": true, "family": true, "test": true, "drug": true,
	"medication": true, "procedure": true, "study": true, "signer": true, "caregiver": true,
}

// field is one label found on a line and the tokens of its value.
type field struct {
	def   labelDef
	fuzzy bool // the label matched with one OCR substitution
	punct bool // the label carried ':' ';' or '#'
	value []token
	// label is the box of the label's tokens; prevX is where the token before the label
	// ends and nextX where the first token after the label's value (or, with no value,
	// after the label) starts, 0 when there is none: the column the label heads lies
	// between them.
	label        chartscan.Box
	prevX, nextX int
	// twoD reports that the value was found beside or below the label in the page's
	// geometry rather than on Tesseract's line.
	twoD bool
}

// scanLine finds the labelled fields of one line. A value runs from its label to the next
// label, the next "Something:" word, or the next wide gap, so one line may hold several
// label/value pairs.
func scanLine(toks []token) []field {
	type found struct {
		field
		start, end int
	}
	var fields []found
	var stops []int
	for i := 0; i < len(toks); {
		if d, end, fuzzy, ok := matchLabel(toks, i); ok {
			for end+1 < len(toks) && toks[end+1].key == "" && !toks[end+1].gapBefore {
				end++ // a lone ":" or "#" belongs to the label
			}
			punct := false
			for _, t := range toks[i : end+1] {
				punct = punct || strings.ContainsAny(t.text, ":;#")
			}
			// A weak label also starts a field after a separator: "… - Born July 6, 2009".
			accepted := !d.weak || punct || i == 0 || toks[i].gapBefore || toks[i-1].key == "" && !strings.Contains(toks[i-1].text, ",")
			// "Born" with a date right behind it is a birth date, wherever it stands
			// ("DOE, JANE  MRN: 123  Born 12-Jul-1990" in a footer).
			if !accepted && d.kind == chartscan.KindDOB {
				_, _, _, accepted = parseDateTokens(toks[end+1:])
			}
			if d.key == "name" && i > 0 && notPatientName[toks[i-1].key] {
				accepted = false
			}
			if accepted {
				f := field{def: d, fuzzy: fuzzy, punct: punct}
				for _, t := range toks[i : end+1] {
					f.label = f.label.Union(t.box)
				}
				if i > 0 {
					f.prevX = toks[i-1].box.X1
				}
				fields = append(fields, found{f, i, end})
				stops = append(stops, i)
				i = end + 1
				continue
			}
		}
		if isColonWord(toks[i]) {
			stops = append(stops, i)
		}
		i++
	}
	out := make([]field, 0, len(fields))
	next := 0 // stops and fields are both in line order
	for _, f := range fields {
		for next < len(stops) && stops[next] <= f.end {
			next++
		}
		stop := len(toks)
		if next < len(stops) {
			stop = stops[next]
		}
		v := toks[f.end+1 : stop]
		for j := 1; j < len(v); j++ {
			if v[j].gapBefore {
				v = v[:j]
				break
			}
		}
		f.value = v
		if next := f.end + 1 + len(v); next < len(toks) {
			f.nextX = toks[next].box.X0
		}
		out = append(out, f.field)
	}
	return out
}

// isColonWord reports whether t looks like some label we do not know ("Room:"), which
// ends the value before it.
func isColonWord(t token) bool {
	if !strings.HasSuffix(t.text, ":") {
		return false
	}
	for _, r := range t.text {
		if r >= '0' && r <= '9' {
			return false
		}
	}
	return t.key != ""
}

// matchLabel returns the longest label whose key is spelled by the tokens from i on. A
// label may be split over tokens ("D. O. B.") or glued ("DateofBirth"), and a long label
// may carry one OCR substitution inside a long word ("Patlent Name").
func matchLabel(toks []token, i int) (best labelDef, end int, fuzzy bool, ok bool) {
	if toks[i].key == "" {
		return labelDef{}, 0, false, false
	}
	for _, d := range labels {
		e, fz, hit := spells(toks, i, d.key)
		if !hit {
			continue
		}
		better := !ok || len(d.key) > len(best.key) || (len(d.key) == len(best.key) && fuzzy && !fz)
		if better {
			best, end, fuzzy, ok = d, e, fz, true
		}
	}
	return best, end, fuzzy, ok
}

// spells reports whether the keys of toks[i:] spell key, and where that ends. A long
// label may also be spelt with one letter lost or added ("Date of Bith"): see
// spellsIndel.
func spells(toks []token, i int, key string) (end int, fuzzy bool, ok bool) {
	if end, fuzzy, ok = spellsSubst(toks, i, key); ok {
		return end, fuzzy, ok
	}
	return spellsIndel(toks, i, key)
}

// spellsIndel reports whether the keys of toks[i:] spell a label of at least ten
// letters with one letter OCR lost or added: the same words, one letter shorter or
// longer, equal to the key but for that letter, ending on a word of at least four.
func spellsIndel(toks []token, i int, key string) (end int, fuzzy bool, ok bool) {
	if len(key) < 10 {
		return 0, false, false
	}
	acc := ""
	for j, k := range labelKeys(toks, i) {
		acc += k
		if len(acc) > len(key)+1 {
			return 0, false, false
		}
		if (len(acc) == len(key)-1 || len(acc) == len(key)+1) && oneIndel(acc, key) && len(k) >= 4 {
			return j, true, true
		}
	}
	return 0, false, false
}

// labelKeys yields the index and key of each word of toks[i:] that has letters or
// digits, up to the first wide gap after toks[i]: the words a label may be spelt over.
func labelKeys(toks []token, i int) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		for j := i; j < len(toks); j++ {
			if j > i && toks[j].gapBefore {
				return
			}
			if k := toks[j].key; k != "" && !yield(j, k) {
				return
			}
		}
	}
}

// oneIndel reports whether a and b, whose lengths differ by one, are equal but for one
// letter the longer has and the shorter lacks.
func oneIndel(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	p := 0
	for p < len(a) && a[p] == b[p] {
		p++
	}
	return a[p:] == b[p+1:]
}

// spellsSubst is spells with letters substituted only.
func spellsSubst(toks []token, i int, key string) (end int, fuzzy bool, ok bool) {
	allowed := 0
	if len(key) >= 6 {
		allowed = 1
	}
	acc := 0 // bytes of key matched so far
	diffs := 0
	for j, k := range labelKeys(toks, i) {
		if acc+len(k) > len(key) {
			return 0, false, false
		}
		for b := 0; b < len(k); b++ {
			// A substitution is only forgiven inside a long word: in a short one it
			// turns "DOE" into "DOB".
			if k[b] != key[acc+b] {
				diffs++
				if len(k) < 5 {
					diffs += allowed
				}
			}
		}
		if diffs > allowed {
			return 0, false, false
		}
		acc += len(k)
		if acc == len(key) {
			return j, diffs > 0, true
		}
	}
	return 0, false, false
}
