package indexer

import (
	"slices"
	"strings"
	"unicode"

	"github.com/chartscan/chartscan"
)

// kindOrder is the order Extract returns identifiers in.
var kindOrder = []chartscan.IdentifierKind{
	chartscan.KindMRN, chartscan.KindName, chartscan.KindDOB, chartscan.KindSex,
	chartscan.KindDocType, chartscan.KindDateOfService,
}

// Extract reads the patient identifiers printed on one page from its OCR words: MRN,
// name, date of birth, sex, document type and date of service, each at most once (the
// most confident reading), and the page's number in its document. Confidence is the mean
// OCR confidence of the value's words scaled by how strong the label and the value's
// form are.
//
// A label's value is read on its line; failing that, beside it or below it in the
// column it heads, as table forms and boxed forms print it (layout.go). Fields of an
// unlabelled identifier block (an imprint, a sticker: blocks.go) fill in what no label
// gave. Labels of identifying fields left without a readable value are reported as one
// KindUnread identifier, so that filing never takes such a page for a continuation.
func Extract(words []chartscan.Word) []chartscan.Identifier {
	lines := buildLines(words)
	var rows []row // built on first need
	geometry := func() []row {
		if rows == nil {
			rows = pageRows(lines)
		}
		return rows
	}
	var found []chartscan.Identifier
	unread := map[chartscan.IdentifierKind]bool{}
	for _, ln := range lines {
		for _, f := range scanLine(ln.toks) {
			if id, ok := readField(f); ok {
				found = append(found, id)
				continue
			}
			if !twoDKinds[f.def.kind] {
				continue
			}
			if len(f.value) > 0 {
				// What followed the label did not read as its value: it is the next
				// column's header, and this column ends where it starts.
				f.nextX = f.value[0].box.X0
			}
			f.twoD = true
			read := false
			for _, look := range []func(field, []row) []token{beside, below} {
				if v := look(f, geometry()); len(v) > 0 {
					g := f
					g.value = v
					if id, ok := readField(g); ok {
						found = append(found, id)
						read = true
						break
					}
				}
			}
			if !read && !f.def.weak {
				unread[baseKind(f.def.kind)] = true
			}
		}
	}
	found = joinNameHalves(found)
	for _, id := range append(identifierBlocks(segmentsOf(geometry())), rowNames(geometry())...) {
		if !hasKind(found, id.Kind) {
			found = append(found, id)
		}
	}
	if id, ok := docType(lines); ok {
		found = append(found, id)
	}
	out := pickBest(found)
	if id, ok := pageNumber(lines); ok {
		out = append(out, id)
	}
	if id, ok := continuedMarker(lines); ok {
		out = append(out, id)
	}
	var missing []string
	for _, k := range []chartscan.IdentifierKind{chartscan.KindMRN, chartscan.KindName, chartscan.KindDOB} {
		if unread[k] && !hasKind(out, k) {
			missing = append(missing, string(k))
		}
	}
	if len(missing) > 0 {
		out = append(out, chartscan.Identifier{Kind: chartscan.KindUnread, Value: strings.Join(missing, ",")})
	}
	return out
}

// twoDKinds are the fields whose value Extract looks for beside and below the label
// when none follows it on its line.
var twoDKinds = map[chartscan.IdentifierKind]bool{
	chartscan.KindMRN: true, chartscan.KindName: true, kindFamily: true, kindGiven: true,
	chartscan.KindDOB: true, chartscan.KindSex: true, chartscan.KindDateOfService: true,
}

// baseKind maps the name halves to KindName.
func baseKind(k chartscan.IdentifierKind) chartscan.IdentifierKind {
	if k == kindFamily || k == kindGiven {
		return chartscan.KindName
	}
	return k
}

func hasKind(ids []chartscan.Identifier, k chartscan.IdentifierKind) bool {
	return slices.ContainsFunc(ids, func(id chartscan.Identifier) bool { return id.Kind == k })
}

// readField reads the value of one labelled field.
func readField(f field) (chartscan.Identifier, bool) {
	var value string
	var n int
	var q float64
	var ok bool
	switch f.def.kind {
	case chartscan.KindMRN:
		value, n, q, ok = parseMRN(f.value)
	case chartscan.KindName:
		value, n, q, ok = parseName(f.value, (f.def.weak && !f.punct) || f.twoD)
		ok = ok && !labelWordsIn(f.value[:n])
	case kindFamily:
		value, n, q, ok = parseNameHalf(f.value, true)
	case kindGiven:
		value, n, q, ok = parseNameHalf(f.value, false)
	case chartscan.KindDOB:
		value, n, q, ok = parseDateTokens(f.value)
		ok = ok && value <= now().Format("2006-01-02")
	case chartscan.KindDateOfService:
		value, n, q, ok = parseDateTokens(f.value)
	case chartscan.KindSex:
		if len(f.value) > 0 {
			value, ok = NormalizeSex(f.value[0].text)
			n, q = 1, 1
		}
	}
	if !ok {
		return chartscan.Identifier{}, false
	}
	factor := f.def.factor * q
	if !f.punct && !f.def.weak {
		factor *= 0.95
	}
	if f.fuzzy {
		factor *= 0.9
	}
	if f.twoD {
		factor *= 0.9
	}
	raw, box, conf := span(f.value[:n])
	return chartscan.Identifier{Kind: f.def.kind, Value: value, Raw: raw, Confidence: clamp01(conf * factor), Box: box}, true
}

// formWords are the words of form labels and headers. A "name" made of them is the
// header row of a table read as a value ("Med Rec No" misread, taken for "NO, Med"), not
// a patient's name.
var formWords = map[string]bool{
	"patient": true, "name": true, "mrn": true, "med": true, "rec": true, "no": true,
	"number": true, "dob": true, "date": true, "birth": true, "sex": true, "gender": true,
	"unit": true, "chart": true, "id": true, "pt": true, "visit": true, "age": true,
	"acct": true, "account": true, "room": true, "bed": true, "location": true, "loc": true,
	"physician": true, "attending": true, "admit": true, "encounter": true, "medical": true,
	"record": true, "fin": true, "service": true, "ward": true,
}

func labelWordsIn(toks []token) bool {
	for _, t := range toks {
		for _, w := range strings.FieldsFunc(t.text, func(r rune) bool { return r == ',' || r == '.' }) {
			if formWords[keyOf(w)] {
				return true
			}
		}
	}
	return false
}

// NormalizeMRN returns an MRN the way it is stored and compared: upper case, without
// spaces, hyphens and dots.
func NormalizeMRN(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' || r == '.' {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}

// parseMRN reads an MRN from the start of a value. OCR sometimes splits a grouped number
// ("123 456"), so short digit groups are joined; a long number is never extended, so a
// following age or room number cannot change it.
func parseMRN(toks []token) (string, int, float64, bool) {
	var b strings.Builder
	n := 0
	q := 1.0
	for i, t := range toks {
		// Specks OCR reads beside a number ("100941616°") are not part of it.
		s := strings.TrimRight(t.text, ",;:°'’`*·•\"")
		if i == 0 {
			s = strings.TrimLeft(s, ":;#")
		}
		if i > 0 {
			if !digitGroup(s) || !digitGroup(toks[0].text) || len(s) > 4 || b.Len() > 8 {
				break
			}
			q = 0.9
		}
		b.WriteString(s)
		n++
		if !digitGroup(s) || len(s) > 4 {
			break
		}
	}
	v := NormalizeMRN(b.String())
	alnum, digits := 0, 0
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
			alnum++
		case r >= 'A' && r <= 'Z':
			alnum++
		default:
			return "", 0, 0, false
		}
	}
	if alnum < 4 || digits == 0 || alnum > 20 {
		return "", 0, 0, false
	}
	return v, n, q, true
}

// digitGroup reports whether s is a short run of digits, possibly hyphenated.
func digitGroup(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// NormalizeSex maps the ways charts and EMPIs write sex to FHIR administrative gender:
// "male", "female", "other" or "unknown". ok is false for anything else.
func NormalizeSex(s string) (sex string, ok bool) {
	switch keyOf(s) {
	case "m", "male", "man", "boy":
		return "male", true
	case "f", "female", "woman", "girl":
		return "female", true
	case "o", "other", "x", "nonbinary", "intersex":
		return "other", true
	case "u", "unk", "unknown", "notknown", "undetermined", "unspecified":
		return "unknown", true
	}
	return "", false
}

// parseNameHalf reads a family name (family) or a given name from a "Last Name:" or
// "First Name:" field, upper-casing or title-casing it as a KindName value does.
func parseNameHalf(toks []token, family bool) (string, int, float64, bool) {
	var words []string
	for _, t := range toks {
		w := strings.Trim(t.text, ",;:")
		if !nameShaped(w) || len(words) == 3 || (!family && len(words) == 1) {
			break
		}
		words = append(words, strings.TrimSuffix(w, "."))
	}
	if len(words) == 0 {
		return "", 0, 0, false
	}
	if family {
		return strings.ToUpper(strings.Join(words, " ")), len(words), 1, letters(words[0]) >= 1
	}
	return titleCase(words[0]), 1, 1, true
}

// joinNameHalves replaces separate family and given fields by one KindName identifier.
func joinNameHalves(found []chartscan.Identifier) []chartscan.Identifier {
	fi := bestIndex(found, kindFamily)
	gi := bestIndex(found, kindGiven)
	var out []chartscan.Identifier
	for _, id := range found {
		if id.Kind != kindFamily && id.Kind != kindGiven {
			out = append(out, id)
		}
	}
	if fi < 0 || gi < 0 {
		return out
	}
	f, g := found[fi], found[gi]
	return append(out, chartscan.Identifier{
		Kind:       chartscan.KindName,
		Value:      f.Value + ", " + g.Value,
		Raw:        f.Raw + " " + g.Raw,
		Confidence: min(f.Confidence, g.Confidence),
		Box:        f.Box.Union(g.Box),
	})
}

func bestIndex(ids []chartscan.Identifier, kind chartscan.IdentifierKind) int {
	best := -1
	for i, id := range ids {
		if id.Kind == kind && (best < 0 || id.Confidence > ids[best].Confidence) {
			best = i
		}
	}
	return best
}

// pickBest keeps the most confident identifier of each kind. A page that shows two
// different MRNs, names or birth dates may be about two people (a mother and her baby, a
// letter about a relative), so the reading kept loses half its confidence.
func pickBest(found []chartscan.Identifier) []chartscan.Identifier {
	var out []chartscan.Identifier
	for _, kind := range kindOrder {
		i := bestIndex(found, kind)
		if i < 0 {
			continue
		}
		best := found[i]
		if kind == chartscan.KindMRN || kind == chartscan.KindName || kind == chartscan.KindDOB {
			if slices.ContainsFunc(found, func(id chartscan.Identifier) bool {
				return id.Kind == kind && id.Value != best.Value
			}) {
				best.Confidence /= 2
			}
		}
		out = append(out, best)
	}
	return out
}

func clamp01(x float64) float64 { return min(max(x, 0), 1) }
