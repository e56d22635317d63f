package indexer

import (
	"log/slog"

	"github.com/chartscan/chartscan"
)

// Reading is one value a page offers, normalized, with how sure OCR and extraction are
// of it, in [0,1]. An empty Value means the page does not show it.
type Reading struct {
	Value      string  `json:"value"`
	Confidence float64 `json:"confidence"`
}

// Evidence is what a page, or a segment of pages, offers to match on. Values are
// normalized the way Score compares them: MRN by NormalizeMRN, names by NormalizeName
// (Given is the first given name), DOB as YYYY-MM-DD, Sex as NormalizeSex ("unknown" is
// left out), Street lower case, Postcode without spaces, Phone as its last ten digits.
// Lookups (the EMPI's blocking queries) take it as it is.
type Evidence struct {
	MRN      Reading `json:"mrn"`
	Family   Reading `json:"family"`
	Given    Reading `json:"given"`
	DOB      Reading `json:"dob"`
	Sex      Reading `json:"sex"`
	Street   Reading `json:"street"`
	City     Reading `json:"city"`
	Postcode Reading `json:"postcode"`
	Phone    Reading `json:"phone"`
}

// LogValue keeps the evidence out of logs: it is PHI.
func (e Evidence) LogValue() slog.Value { return slog.StringValue("[evidence]") }

// Identifying reports whether e holds something filing can match on: an MRN, a name or
// a date of birth. Sex, address and phone alone identify nobody.
func (e Evidence) Identifying() bool {
	return e.MRN.Value != "" || e.Family.Value != "" || e.DOB.Value != ""
}

// readings lists e's fields in fieldOrder, for code that treats them alike.
func (e *Evidence) readings() []*Reading {
	return []*Reading{&e.MRN, &e.Family, &e.Given, &e.DOB, &e.Sex, &e.Street, &e.City, &e.Postcode, &e.Phone}
}

// EvidenceFrom gathers the identifiers extracted from one page into Evidence, keeping the
// most confident reading of each kind. A page that shows two different MRNs keeps the
// more confident one at half its confidence: one of them is someone else's.
func EvidenceFrom(ids []chartscan.Identifier) Evidence {
	var e Evidence
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
	if id, ok := best[chartscan.KindMRN]; ok {
		if v := NormalizeMRN(id.Value); v != "" {
			e.MRN = Reading{v, clamp01(id.Confidence)}
			if len(mrns) > 1 {
				e.MRN.Confidence /= 2
			}
		}
	}
	if id, ok := best[chartscan.KindName]; ok {
		fam, giv := splitNameValue(id.Value)
		if f := NormalizeName(fam); f != "" {
			e.Family = Reading{f, clamp01(id.Confidence)}
		}
		if g := NormalizeName(giv); g != "" {
			e.Given = Reading{g, clamp01(id.Confidence)}
		}
	}
	if id, ok := best[chartscan.KindDOB]; ok {
		if d, ok := ParseDate(id.Value); ok {
			e.DOB = Reading{d, clamp01(id.Confidence)}
		}
	}
	if id, ok := best[chartscan.KindSex]; ok {
		if s, ok := NormalizeSex(id.Value); ok && s != "unknown" {
			e.Sex = Reading{s, clamp01(id.Confidence)}
		}
	}
	return e
}

// Frequencies gives the share of the EMPI's patients that carry a family name, for the
// term-frequency adjustment: agreeing on "Smith" says less than agreeing on "Okonkwo".
// Surname receives a NormalizeName'd name and returns a share in [0,1]; 0 means unknown.
type Frequencies interface {
	Surname(normalized string) float64
}

// SurnameShares is a Frequencies held in memory: normalized family name → share.
type SurnameShares map[string]float64

// Surname returns the share of the name, 0 when it is not listed.
func (s SurnameShares) Surname(normalized string) float64 { return s[normalized] }

// recordValues is a patient normalized the way Evidence is.
type recordValues struct {
	mrn, family, given, dob, sex, street, city, postcode, phone string
}

func recordOf(p chartscan.Patient) recordValues {
	sex, _ := NormalizeSex(p.Sex)
	if sex == "unknown" {
		sex = ""
	}
	dob := ""
	if isISODate(p.BirthDate) || isPartialDate(p.BirthDate) {
		dob = p.BirthDate // a partial date ("1975") agrees at best on the year
	}
	return recordValues{
		mrn:      NormalizeMRN(p.MRN),
		family:   NormalizeName(p.Family),
		given:    NormalizeName(firstWord(p.Given)),
		dob:      dob,
		sex:      sex,
		street:   normalizeStreet(p.Street),
		city:     NormalizeName(p.City),
		postcode: normalizePostcode(p.Postcode),
		phone:    normalizePhone(p.Phone),
	}
}

// Vector is a comparison vector: the agreement level of each field, page against record.
type Vector map[string]string

// Compare grades evidence against one EMPI patient field by field, under the MRN
// check-digit scheme. Fields absent on either side are LevelMissing.
func Compare(e Evidence, p chartscan.Patient, scheme string) Vector {
	// Address and phone come from callers other than EvidenceFrom; normalize them here
	// (the normalizations are idempotent) rather than trust every caller.
	e.Street.Value = normalizeStreet(e.Street.Value)
	e.City.Value = NormalizeName(e.City.Value)
	e.Postcode.Value = normalizePostcode(e.Postcode.Value)
	e.Phone.Value = normalizePhone(e.Phone.Value)
	return compareRecord(e, recordOf(p), scheme)
}

// compareRecord is Compare on values already normalized on both sides.
func compareRecord(e Evidence, r recordValues, scheme string) Vector {
	fam, giv := compareNames(e.Family.Value, e.Given.Value, r.family, r.given)
	return Vector{
		FieldMRN:      compareMRN(e.MRN.Value, r.mrn, scheme),
		FieldFamily:   fam,
		FieldGiven:    giv,
		FieldDOB:      compareDOB(e.DOB.Value, r.dob),
		FieldSex:      compareExact(e.Sex.Value, r.sex),
		FieldStreet:   compareStreet(e.Street.Value, r.street),
		FieldCity:     compareExact(e.City.Value, r.city),
		FieldPostcode: compareExact(e.Postcode.Value, r.postcode),
		FieldPhone:    compareExact(e.Phone.Value, r.phone),
	}
}

// alwaysShown are the fields every candidate's evidence lists, compared or not, so a
// reviewer sees that a missing MRN or birth date was missing; address and phone are
// listed only when both sides have them.
var alwaysShown = map[string]bool{FieldMRN: true, FieldFamily: true, FieldGiven: true, FieldDOB: true, FieldSex: true}

// Score compares evidence with one EMPI patient and returns the candidate: Score is the
// total weight in bits and Evidence one entry per field with its level and weight, which
// is stored and shown to reviewers. f may be nil (no term-frequency adjustment).
//
// The term-frequency adjustment replaces the u of an exact family-name agreement by the
// surname's share of the EMPI (at least SurnameFloor): a surname one patient in a
// hundred carries is worth log2(m·100) bits, one in a million far more.
func (m Model) Score(e Evidence, p chartscan.Patient, f Frequencies) chartscan.Candidate {
	v := Compare(e, p, m.CheckDigit)
	readings := e.readings() // in fieldOrder
	c := chartscan.Candidate{MRN: p.MRN, Evidence: make([]chartscan.Evidence, 0, len(fieldOrder))}
	for i, field := range fieldOrder {
		level := v[field]
		if level == LevelMissing && !alwaysShown[field] {
			continue
		}
		u := 0.0
		if field == FieldFamily && level == LevelExact && f != nil {
			if share := f.Surname(e.Family.Value); share > 0 {
				u = max(share, m.SurnameFloor)
			}
		}
		w := m.Weight(field, level, readings[i].Confidence, u)
		c.Evidence = append(c.Evidence, chartscan.Evidence{Field: field, Level: level, Weight: w})
		c.Score += w
	}
	c.Score = roundBits(c.Score)
	return c
}

// roundBits rounds a sum of weights to the hundredths the weights are kept in, so sums
// compare equal however they were added.
func roundBits(x float64) float64 {
	if x < 0 {
		return -roundBits(-x)
	}
	return float64(int64(x*100+0.5)) / 100
}

// levelOf returns the level a candidate's evidence records for a field, LevelMissing if
// none.
func levelOf(c chartscan.Candidate, field string) string {
	for _, e := range c.Evidence {
		if e.Field == field {
			return e.Level
		}
	}
	return LevelMissing
}

// nameAgrees reports whether a name level says "the same name, as OCR or a typo reads
// it": exact or a close Jaro–Winkler band.
func nameAgrees(level string) bool {
	return level == LevelExact || level == LevelJW92 || level == LevelSwapped
}

// Query is the EMPI candidate search for evidence e: the MRN read and every MRN one OCR
// confusion or adjacent transposition away that passes the check digit, the names and
// the birth date, as the blocking queries take them.
func (m Model) Query(e Evidence) chartscan.CandidateQuery {
	q := chartscan.CandidateQuery{Family: e.Family.Value, Given: e.Given.Value, BirthDate: e.DOB.Value}
	if e.MRN.Value != "" {
		q.MRNs = append([]string{e.MRN.Value}, MRNVariants(e.MRN.Value, m.CheckDigit)...)
	}
	return q
}
