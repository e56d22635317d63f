package indexer

import (
	"testing"

	"github.com/chartscan/chartscan"
)

func TestCompareDOBPartial(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"1975-03-14", "1975", LevelYearOnly},
		{"1975", "1975-03-14", LevelYearOnly},
		{"1975-03-14", "1975-03", LevelYearOnly},
		{"1975-03", "1975", LevelYearOnly},
		{"1975-03-14", "1975-04", LevelDisagree}, // the month it has differs
		{"1975-03-14", "1976", LevelDisagree},
		{"1975-03-14", "1985-03", LevelDisagree},
		{"1975-03-14", "19", LevelDisagree}, // not a date: as a whole date that is none
		{"1975-03-14", "1975-13", LevelDisagree},
		{"", "1975", LevelMissing},
		{"1975-03-14", "", LevelMissing},
	}
	for _, tt := range tests {
		if got := compareDOB(tt.a, tt.b); got != tt.want {
			t.Errorf("compareDOB(%s, %s) = %s, want %s", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestScoreIncompleteRecord scores a page showing everything against EMPI records that
// lack one field each: the field is missing (weight 0), never a disagreement, and the
// rest of the score is what the complete record gets for it.
func TestScoreIncompleteRecord(t *testing.T) {
	m := DefaultModel()
	full := chartscan.Patient{MRN: "79927398713", Family: "Okonkwo", Given: "Chidi", BirthDate: "1975-03-14", Sex: "male"}
	page := evidenceOf(recordOf(full))
	whole := m.Score(page, full, nil)
	weightOf := func(c chartscan.Candidate, field string) float64 {
		for _, e := range c.Evidence {
			if e.Field == field {
				return e.Weight
			}
		}
		t.Fatalf("no evidence for %s in %+v", field, c.Evidence)
		return 0
	}
	tests := []struct {
		name  string
		edit  func(*chartscan.Patient)
		field string
	}{
		{"no birth date", func(p *chartscan.Patient) { p.BirthDate = "" }, FieldDOB},
		{"no family name", func(p *chartscan.Patient) { p.Family = "" }, FieldFamily},
		{"no given name", func(p *chartscan.Patient) { p.Given = "" }, FieldGiven},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := full
			tt.edit(&p)
			c := m.Score(page, p, nil)
			if got := levelOf(c, tt.field); got != LevelMissing {
				t.Errorf("%s level = %s, want %s", tt.field, got, LevelMissing)
			}
			if w := weightOf(c, tt.field); w != 0 {
				t.Errorf("%s weight = %v, want 0", tt.field, w)
			}
			if want := roundBits(whole.Score - weightOf(whole, tt.field)); c.Score != want {
				t.Errorf("score = %v, want %v: the complete record's without the %s", c.Score, want, tt.field)
			}
			f := m.Decide([]chartscan.Candidate{c})
			if f.Reason == reasonDOBDisagree || f.Reason == reasonNameDisagree {
				t.Errorf("Decide: %q; a missing field disagrees with nothing", f.Reason)
			}
		})
	}
}

// TestScorePartialBirthDate: a record's birth date known only to the year, against a page
// date of that year, is no disagreement; against another year it is.
func TestScorePartialBirthDate(t *testing.T) {
	m := DefaultModel()
	rec := chartscan.Patient{MRN: "79927398713", Family: "Okonkwo", Given: "Chidi", BirthDate: "1975", Sex: "male"}
	page := evidenceOf(recordOf(rec))
	page.DOB = Reading{"1975-03-14", 1}
	c := m.Score(page, rec, nil)
	if got := levelOf(c, FieldDOB); got == LevelDisagree {
		t.Errorf("partial 1975 against 1975-03-14: %s", got)
	}
	if f := m.Decide([]chartscan.Candidate{c}); f.Reason == reasonDOBDisagree {
		t.Errorf("Decide: %q for a partial birth date of the page's year", f.Reason)
	}
	// The comparison itself, on the record's values as the EMPI holds them.
	r := recordOf(rec)
	for partial, want := range map[string]string{"1975": LevelYearOnly, "1975-03": LevelYearOnly, "1980": LevelDisagree, "1975-04": LevelDisagree} {
		r.dob = partial
		if got := compareRecord(page, r, m.CheckDigit)[FieldDOB]; got != want {
			t.Errorf("record %s against page 1975-03-14: %s, want %s", partial, got, want)
		}
	}
	if w, exact := m.Weight(FieldDOB, LevelYearOnly, 1, 0), m.Weight(FieldDOB, LevelExact, 1, 0); w >= exact {
		t.Errorf("year-only agreement weighs %v, not less than an exact date's %v", w, exact)
	}
}
