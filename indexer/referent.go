package indexer

import (
	"slices"
	"strings"

	"github.com/chartscan/chartscan"
)

// EMPI-referential evidence, independent of layout. Whatever a page's layout, its MRN,
// name and birth date are somewhere in its words. Every MRN-shaped token on the page is
// a key to look up in the EMPI; a patient found that way is supported by the page when
// their family name and birth date also appear on it (OCR-tolerant). A page whose fields
// no label or block gave can so still be read — as evidence for the Fellegi–Sunter
// model, never as a filing on its own: Supported fills in only the fields the page's
// own reading lacks, and only for a patient none of those readings disagrees with.

// referentFactor is what a field found by the EMPI's lead is worth, before OCR
// confidence: less than a labelled field, as much as an unlabelled block's.
const referentFactor = 0.8

// maxProbes bounds the look-ups one page makes.
const maxProbes = 12

// Probes returns what to look a page up by: its MRN-shaped tokens (at least six letters
// and digits, most of them digits; the OCR confusions of a digit with a letter folded
// into the digit) and the dates printed on it, each list without repeats and at most
// maxProbes long.
func Probes(words []chartscan.Word) (mrns, dates []string) {
	for _, ln := range buildLines(words) {
		for i, t := range ln.toks {
			if len(mrns) < maxProbes {
				if m, ok := mrnShaped(t.text); ok && !slices.Contains(mrns, m) {
					mrns = append(mrns, m)
				}
			}
			if len(dates) < maxProbes {
				if d, _, _, ok := parseDateTokens(ln.toks[i:]); ok && !slices.Contains(dates, d) {
					dates = append(dates, d)
				}
			}
		}
	}
	return mrns, dates
}

// mrnShaped reports whether a token looks like an MRN and returns it normalized, with
// letters OCR confuses with digits read as the digits when most of it is digits.
func mrnShaped(s string) (string, bool) {
	s = strings.Trim(s, ",;:.()[]#")
	if i := strings.LastIndexAny(s, ":#"); i >= 0 {
		s = s[i+1:]
	}
	v := NormalizeMRN(s)
	if len(v) < 6 || len(v) > 20 {
		return "", false
	}
	digits := 0
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r >= 'A' && r <= 'Z':
		default:
			return "", false
		}
	}
	if digits*4 < len(v)*3 {
		return "", false
	}
	return strings.Map(func(r rune) rune {
		if d, ok := ocrDigit[r]; ok {
			return d
		}
		return r
	}, v), true
}

// ocrDigit maps the letters OCR reads for digits back to them.
var ocrDigit = map[rune]rune{'O': '0', 'Q': '0', 'D': '0', 'I': '1', 'L': '1', 'Z': '2', 'S': '5', 'B': '8', 'G': '6'}

// Supported returns the fields a page supports for patient p, found in its words: the
// MRN token (p's MRN, or the one that led to p: an alias, a misread), the family and
// given name, the birth date, each with its box. ok is true when the family name and the
// birth date both appear, and the MRN too or, without it, the given name as well: a
// name and a date alone are common enough that the given name must also agree.
func Supported(words []chartscan.Word, p chartscan.Patient, viaMRN string) ([]chartscan.Identifier, bool) {
	fam := NormalizeName(p.Family)
	giv := NormalizeName(firstWord(p.Given))
	if fam == "" || !isISODate(p.BirthDate) {
		return nil, false
	}
	var famTok, givTok, mrnTok, dobToks []token
	for _, ln := range buildLines(words) {
		for i, t := range ln.toks {
			if mrnTok == nil && viaMRN != "" {
				if m, ok := mrnShaped(t.text); ok && (m == viaMRN || isMRNVariant(m, viaMRN)) {
					mrnTok = ln.toks[i : i+1]
				}
			}
			if famTok == nil {
				if n := nameAt(ln.toks, i, fam); n > 0 {
					famTok = ln.toks[i : i+n]
				}
			}
			if givTok == nil && giv != "" && len(giv) >= 2 {
				if n := nameAt(ln.toks, i, giv); n > 0 {
					givTok = ln.toks[i : i+n]
				}
			}
			if dobToks == nil {
				if d, n, _, ok := parseDateTokens(ln.toks[i:]); ok && d == p.BirthDate {
					dobToks = ln.toks[i : i+n]
				}
			}
		}
	}
	if famTok == nil || dobToks == nil || (viaMRN != "" && mrnTok == nil) || (viaMRN == "" && givTok == nil) {
		return nil, false
	}
	var out []chartscan.Identifier
	add := func(kind chartscan.IdentifierKind, value string, toks ...[]token) {
		var all []token
		for _, t := range toks {
			all = append(all, t...)
		}
		raw, box, conf := span(all)
		out = append(out, chartscan.Identifier{Kind: kind, Value: value, Raw: raw, Confidence: clamp01(conf * referentFactor), Box: box})
	}
	if mrnTok != nil {
		v, _ := mrnShaped(mrnTok[0].text)
		add(chartscan.KindMRN, v, mrnTok)
	}
	// The name as the page prints it, in the record's order of family and given.
	name := strings.ToUpper(tokensText(famTok))
	if givTok != nil {
		name += ", " + titleCase(tokensText(givTok))
		add(chartscan.KindName, name, famTok, givTok)
	} else if p.Given == "" {
		add(chartscan.KindName, name+", ", famTok)
	}
	add(chartscan.KindDOB, p.BirthDate, dobToks)
	return out, true
}

// nameAt returns how many tokens from toks[i] spell the normalized name want (one or
// two: "O' Brien"), allowing OCR slips in a long name (Jaro–Winkler ≥ 0.92 for six
// letters or more), 0 when they do not.
func nameAt(toks []token, i int, want string) int {
	got := ""
	for n := 1; n <= 2 && i+n <= len(toks); n++ {
		got += NormalizeName(toks[i+n-1].text)
		if got == want {
			return n
		}
		if len(want) >= 6 && abs(len(got)-len(want)) <= 1 && jaroWinkler.Compare(got, want) >= 0.92 {
			return n
		}
		if len(got) >= len(want) {
			break
		}
	}
	return 0
}

func tokensText(toks []token) string {
	parts := make([]string, 0, len(toks))
	for _, t := range toks {
		parts = append(parts, strings.Trim(t.text, ",;:."))
	}
	return strings.Join(parts, "")
}

// Complete adds to a page's identifiers the fields a supported patient's look-up found
// that the page's own reading lacks. It adds nothing when the page's readings disagree
// with the found fields (another MRN, another name, another birth date): the page's own
// evidence then speaks alone, and the disagreement shows in its candidates' scores.
func Complete(ids, found []chartscan.Identifier) []chartscan.Identifier {
	own := EvidenceFrom(ids)
	ref := EvidenceFrom(found)
	if own.MRN.Value != "" && ref.MRN.Value != "" && own.MRN.Value != ref.MRN.Value && !isMRNVariant(own.MRN.Value, ref.MRN.Value) {
		return ids
	}
	if own.Family.Value != "" && ref.Family.Value != "" && namesConflict(ref, own) {
		return ids
	}
	if own.DOB.Value != "" && ref.DOB.Value != "" && compareDOB(own.DOB.Value, ref.DOB.Value) == LevelDisagree {
		return ids
	}
	out := slices.Clone(ids)
	for _, id := range found {
		if !hasKind(out, id.Kind) {
			out = append(out, id)
		}
	}
	return out
}
