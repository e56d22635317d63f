package indexer

import (
	"cmp"
	"slices"

	"github.com/chartscan/chartscan"
)

// Agreement levels recorded in Evidence.Level.
const (
	levelExact    = "exact"
	levelSwapped  = "swapped"  // family and given name read the other way round
	levelInitial  = "initial"  // same family name, given name only an initial that fits
	levelFamily   = "family"   // same family name, different given name
	levelDisagree = "disagree" // both sides present and different
	levelMissing  = "missing"  // not on the page, or not in the EMPI record
)

// weights are the bits each field's agreement level adds to a candidate's score. They are
// set by hand for this first version: an MRN is near unique, a full name and a birth date
// are strong together, sex is weak.
var weights = map[string]map[string]float64{
	"mrn":  {levelExact: 10, levelDisagree: -8, levelMissing: 0},
	"name": {levelExact: 6, levelSwapped: 5, levelInitial: 3, levelFamily: 2, levelDisagree: -5, levelMissing: 0},
	"dob":  {levelExact: 7, levelDisagree: -5, levelMissing: 0},
	"sex":  {levelExact: 0.5, levelDisagree: -2, levelMissing: 0},
}

// pageFacts are the identifiers of one page the filing decision compares.
type pageFacts struct {
	mrn          string
	mrnConflict  bool // the page carries more than one MRN
	family       string
	given        string // first given name, normalized
	dob          string
	sex          string
	hasName      bool
	hasAnyFileID bool // an MRN, a name or a birth date: what filing can match on
}

func factsOf(ids []chartscan.Identifier) pageFacts {
	var f pageFacts
	best := map[chartscan.IdentifierKind]chartscan.Identifier{}
	mrns := map[string]bool{}
	for _, id := range ids {
		if id.Kind == chartscan.KindMRN && NormalizeMRN(id.Value) != "" {
			mrns[NormalizeMRN(id.Value)] = true
		}
		if b, ok := best[id.Kind]; !ok || id.Confidence > b.Confidence {
			best[id.Kind] = id
		}
	}
	f.mrn = NormalizeMRN(best[chartscan.KindMRN].Value)
	f.mrnConflict = len(mrns) > 1
	if fam, giv := splitNameValue(best[chartscan.KindName].Value); NormalizeName(fam) != "" && NormalizeName(giv) != "" {
		f.family, f.given, f.hasName = NormalizeName(fam), NormalizeName(giv), true
	}
	if d, ok := ParseDate(best[chartscan.KindDOB].Value); ok {
		f.dob = d
	}
	f.sex, _ = NormalizeSex(best[chartscan.KindSex].Value)
	if f.sex == "unknown" {
		f.sex = ""
	}
	f.hasAnyFileID = f.mrn != "" || f.hasName || f.dob != ""
	return f
}

// scored is a candidate with the agreement levels the decision rules read.
type scored struct {
	patient chartscan.Patient
	cand    chartscan.Candidate
	mrn     string
	name    string
	dob     string
}

func (s scored) nameAgrees() bool { return s.name == levelExact || s.name == levelSwapped }

// qualifies reports whether the candidate may be auto-filed: its MRN is the page's and
// its name or birth date agrees. A field present on both sides that disagrees vetoes it: the MRN with a matching
// name but another birth date is as likely a misread MRN of a namesake as a typo, and a
// misfile is the one mistake chartscan must not make.
func (s scored) qualifies() bool {
	return s.mrn == levelExact && (s.nameAgrees() || s.dob == levelExact) &&
		s.name != levelDisagree && s.dob != levelDisagree
}

// score compares a page with one EMPI patient field by field.
func score(f pageFacts, p chartscan.Patient) scored {
	s := scored{patient: p, mrn: levelMissing, name: levelMissing, dob: levelMissing}
	if pm := NormalizeMRN(p.MRN); f.mrn != "" && pm != "" {
		s.mrn = agree(f.mrn == pm)
	}
	if pf, pg := NormalizeName(p.Family), NormalizeName(firstWord(p.Given)); f.hasName && pf != "" {
		switch {
		case f.family == pf && f.given == pg:
			s.name = levelExact
		case f.family == pg && f.given == pf:
			s.name = levelSwapped
		case f.family == pf && isInitial(f.given) && pg != "" && []rune(pg)[0] == []rune(f.given)[0]:
			s.name = levelInitial
		case f.family == pf:
			s.name = levelFamily
		default:
			s.name = levelDisagree
		}
	}
	if f.dob != "" && p.BirthDate != "" {
		s.dob = agree(f.dob == p.BirthDate)
	}
	sex := levelMissing
	if ps, _ := NormalizeSex(p.Sex); f.sex != "" && ps != "" && ps != "unknown" {
		sex = agree(f.sex == ps)
	}
	s.cand = chartscan.Candidate{MRN: p.MRN}
	for _, e := range [][2]string{{"mrn", s.mrn}, {"name", s.name}, {"dob", s.dob}, {"sex", sex}} {
		w := weights[e[0]][e[1]]
		s.cand.Evidence = append(s.cand.Evidence, chartscan.Evidence{Field: e[0], Level: e[1], Weight: w})
		s.cand.Score += w
	}
	return s
}

func agree(eq bool) string {
	if eq {
		return levelExact
	}
	return levelDisagree
}

// scoreAll scores the distinct candidates and ranks them, best first. The same record
// listed twice (found by MRN and again by name and birth date) is one candidate.
func scoreAll(f pageFacts, patients []chartscan.Patient) []scored {
	var out []scored
	seen := map[chartscan.Patient]bool{}
	for _, p := range patients {
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, score(f, p))
	}
	slices.SortStableFunc(out, func(a, b scored) int {
		return cmp.Or(cmp.Compare(b.cand.Score, a.cand.Score), cmp.Compare(a.cand.MRN, b.cand.MRN))
	})
	return out
}
