package indexer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/chartscan/chartscan"
	"github.com/google/go-cmp/cmp"
)

func TestCompareMRN(t *testing.T) {
	tests := []struct {
		page, rec, scheme, want string
	}{
		{"79927398713", "79927398713", "luhn", LevelExact},
		// 7 read as 1: the page fails Luhn, the record passes and is one confusion away.
		{"19927398713", "79927398713", "luhn", LevelCheckDigitRepaired},
		{"19927398713", "79927398713", "none", LevelOCRConfusable},
		// The page passes its check: a variant is only confusable, not a repair.
		{"79927398713", "19927398713", "luhn", LevelOCRConfusable},
		{"00123456", "0O123456", "none", LevelOCRConfusable},
		{"A5B8", "AS88", "none", LevelDisagree}, // two confusions
		{"12345678", "12345687", "none", LevelOCRConfusable},
		{"12345678", "13245678", "luhn", LevelOCRConfusable}, // neither passes Luhn
		{"12345678", "12345690", "none", LevelDisagree},
		{"12345678", "1234567", "none", LevelDisagree},
		{"", "12345678", "none", LevelMissing},
		// A reading that fails Luhn and is no variant of a record that passes is a
		// misread that names no one: missing, not a disagreement.
		{"79927398753", "79927398713", "luhn", LevelMissing},  // 1 read as 5
		{"799273987130", "79927398713", "luhn", LevelMissing}, // a digit added
		{"49927398716", "79927398713", "luhn", LevelDisagree}, // another valid MRN
		{"79927398753", "79927398713", "none", LevelDisagree},
	}
	for _, tt := range tests {
		if got := compareMRN(tt.page, tt.rec, tt.scheme); got != tt.want {
			t.Errorf("compareMRN(%q, %q, %q) = %s, want %s", tt.page, tt.rec, tt.scheme, got, tt.want)
		}
	}
}

func TestCompareNames(t *testing.T) {
	tests := []struct {
		family, given, recFamily, recGiven string
		wantFamily, wantGiven              string
	}{
		{"doe", "jane", "doe", "jane", LevelExact, LevelExact},
		{"jane", "doe", "doe", "jane", LevelSwapped, LevelSwapped},
		{"martha", "jane", "marhta", "jane", LevelJW92, LevelExact},       // JW 0.961
		{"smith", "jane", "smyth", "jane", LevelJW85, LevelExact},         // JW 0.893
		{"brown", "shaun", "braun", "sean", LevelPhonetic, LevelPhonetic}, // JW 0.787 and 0.805; NYSIIS BRAN, SAN
		{"doe", "j", "doe", "jane", LevelExact, LevelInitial},
		{"doe", "m", "doe", "jane", LevelExact, LevelDisagree},
		{"doe", "john", "roe", "mary", LevelDisagree, LevelDisagree},
		{"smith", "jane", "okafor", "jane", LevelDisagree, LevelExact},
		{"doe", "", "doe", "jane", LevelExact, LevelMissing},
		// Typing slips Jaro–Winkler grades below 0.85 (0.756, 0.827, 0.841).
		{"edwards", "olivia", "edwards", "ilivoa", LevelExact, LevelJW85}, // same letters
		{"dixon", "amber", "dixon", "amrbr", LevelExact, LevelJW85},       // one replaced in five letters
		{"taylor", "lola", "atlylor", "lola", LevelJW85, LevelExact},
		// Not slips: two edits in four letters, three edits, too short.
		{"doe", "ella", "doe", "lena", LevelExact, LevelDisagree},
		{"rogers", "noah", "rogers", "hnoan", LevelExact, LevelDisagree},
		{"doe", "olivia", "doe", "oliver", LevelExact, LevelJW85}, // JW 0.893 already
		{"doe", "ivy", "doe", "iyvv", LevelExact, LevelDisagree},
		{"doe", "amber", "doe", "abrbr", LevelExact, LevelDisagree},
	}
	for _, tt := range tests {
		fam, giv := compareNames(tt.family, tt.given, tt.recFamily, tt.recGiven)
		if fam != tt.wantFamily || giv != tt.wantGiven {
			t.Errorf("compareNames(%q, %q vs %q, %q) = %s, %s; want %s, %s (JW family %.3f, NYSIIS %s/%s)",
				tt.family, tt.given, tt.recFamily, tt.recGiven, fam, giv, tt.wantFamily, tt.wantGiven,
				jaroWinkler.Compare(tt.family, tt.recFamily), NYSIIS(tt.family), NYSIIS(tt.recFamily))
		}
	}
}

func TestCompareDOB(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"1962-03-14", "1962-03-14", LevelExact},
		{"1962-03-04", "1962-04-03", LevelDayMonthSwapped},
		{"1962-03-14", "1962-03-15", LevelOneDay},
		{"1962-02-28", "1962-03-01", LevelOneDay},
		{"1962-03-14", "1968-03-14", LevelOneDigit},
		{"1962-03-14", "1962-08-14", LevelOneDigit},
		{"1962-03-14", "1962-11-30", LevelYearOnly},
		{"1962-03-14", "1975-11-30", LevelDisagree},
		{"", "1962-03-14", LevelMissing},
	}
	for _, tt := range tests {
		if got := compareDOB(tt.a, tt.b); got != tt.want {
			t.Errorf("compareDOB(%s, %s) = %s, want %s", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestNYSIIS checks the examples of Taft (1970) as reproduced by Lynch and Arends (1977).
func TestNYSIIS(t *testing.T) {
	tests := map[string]string{
		"MacIntosh": "MCANT", "Knuth": "NAT", "Koehn": "CAN", "Phillipson": "FALAPS", "Pfeister": "FASTAR",
		"SCHOENHOEFT": "SANAFT", "MCKEE": "MCY", "MACKIE": "MCY", "HEITSCHMIDT": "HATSNA", "BART": "BAD",
		"HURD": "HAD", "HUNT": "HAD", "WESTERLUND": "WASTAR", "CASSTEVENS": "CASTAF", "VASQUEZ": "VASG",
		"FRAZIER": "FRASAR", "BOWMAN": "BANAN", "MCKNIGHT": "MCNAGT", "RICKERT": "RACAD", "DEUTSCH": "DAT",
		"WESTPHAL": "WASTFA", "SHRIVER": "SRAVAR", "KUHL": "CAL", "RAWSON": "RASAN", "JILES": "JAL",
		"CARRAWAY": "CARY", "YAMADA": "YANAD", "CHRISTINA": "CRASTA", "CHERYL": "CARYL", "NEHEMIAH": "NAHAN",
		"HENRY": "HANRY", "NOAH": "N", "MAHLON": "MALAN", "ELIHU": "ELAH", "JOHN": "JAN", "PHILIP": "FALAP",
		"ARCHIE": "ARCY", "HIRAM": "HARAN", "MALACHI": "MALAC", "SHIRLEY": "SARLY", "ANTHONY": "ANTANY",
		"HYMAN": "HYNAN", "TIMOTHY": "TANATY", "EVE": "EV", "Wikipedia": "WACAPA", "Breschnew": "BRASN", "": "",
	}
	for in, want := range tests {
		if got := NYSIIS(in); got != want {
			t.Errorf("NYSIIS(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckDigitValid(t *testing.T) {
	tests := []struct {
		scheme, mrn string
		want        bool
	}{
		{"luhn", "79927398713", true},
		{"luhn", "79927398710", false},
		{"luhn", "7992-7398-713", true},
		{"luhn", "19927398713", false},
		{"luhn", "7992739871A", false},
		{"luhn", "0", false},
		{"none", "anything", true},
		{"mod11", "79927398713", false},
	}
	for _, tt := range tests {
		if got := CheckDigitValid(tt.scheme, tt.mrn); got != tt.want {
			t.Errorf("CheckDigitValid(%q, %q) = %v, want %v", tt.scheme, tt.mrn, got, tt.want)
		}
	}
}

func TestMRNVariants(t *testing.T) {
	got := MRNVariants("1O5", "none")
	want := []string{"LO5", "IO5", "7O5", "105", "1D5", "1Q5", "1OS", "1O6", "O15", "15O"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MRNVariants(1O5, none) mismatch (-want +got):\n%s", diff)
	}
	// Under Luhn only variants that pass are worth a lookup; the true MRN is among them.
	luhn := MRNVariants("19927398713", "luhn")
	if !slices.Contains(luhn, "79927398713") {
		t.Errorf("MRNVariants(19927398713, luhn) = %v, want it to hold 79927398713", luhn)
	}
	for _, v := range luhn {
		if !CheckDigitValid("luhn", v) {
			t.Errorf("MRNVariants(…, luhn) returned %s, which fails Luhn", v)
		}
	}
}

// TestCheckDigitRepair checks a failing MRN is repaired only to a candidate that exists
// and passes: the level needs the record, and Decide still needs name or birth date.
func TestCheckDigitRepair(t *testing.T) {
	m := DefaultModel()
	p := chartscan.Patient{MRN: "79927398713", Family: "Doe", Given: "Jane", BirthDate: "1962-03-14", Sex: "female"}
	page := Evidence{MRN: Reading{"19927398713", 0.9}, Family: Reading{"doe", 0.9}, Given: Reading{"jane", 0.9}, DOB: Reading{"1962-03-14", 0.9}}
	c := m.Score(page, p, nil)
	if l := levelOf(c, FieldMRN); l != LevelCheckDigitRepaired {
		t.Fatalf("MRN level = %s, want %s", l, LevelCheckDigitRepaired)
	}
	if f := m.Decide([]chartscan.Candidate{c}); f.Status != chartscan.StatusAuto || f.MRN != p.MRN {
		t.Errorf("Decide = %s %s (%s), want auto to the repaired MRN", f.Status, f.MRN, f.Reason)
	}
	// A record whose MRN fails the check is no repair, only a confusion.
	q := p
	q.MRN = "19927398773" // 1 read as 7 at the tenth digit, and fails Luhn
	if l := levelOf(m.Score(Evidence{MRN: Reading{"19927398713", 0.9}}, q, nil), FieldMRN); l != LevelOCRConfusable {
		t.Errorf("MRN level against a failing record = %s, want %s", l, LevelOCRConfusable)
	}
	r := p
	r.MRN = "19927398719" // not a variant: the failing reading names no one, missing
	if l := levelOf(m.Score(page, r, nil), FieldMRN); l != LevelMissing {
		t.Errorf("MRN level of a failing reading against a non-variant = %s, want %s", l, LevelMissing)
	}
	// A reading that passes the check and is no variant is another patient's: it disagrees.
	if l := levelOf(m.Score(Evidence{MRN: Reading{"79927398713", 0.9}}, r, nil), FieldMRN); l != LevelDisagree {
		t.Errorf("MRN level of a passing reading against a non-variant = %s, want %s", l, LevelDisagree)
	}
}

func TestScoreTermFrequency(t *testing.T) {
	m := DefaultModel()
	freq := SurnameShares{"smith": 0.01, "okonkwo": 1e-6}
	score := func(family string) float64 {
		p := chartscan.Patient{MRN: "1", Family: family, Given: "Ann", BirthDate: "1970-01-01"}
		e := Evidence{Family: Reading{NormalizeName(family), 1}}
		for _, ev := range m.Score(e, p, freq).Evidence {
			if ev.Field == FieldFamily {
				return ev.Weight
			}
		}
		return math.NaN()
	}
	smith, okonkwo, unknown := score("Smith"), score("Okonkwo"), score("Unlisted")
	if want := math.Round(math.Log2(0.9/0.01)*100) / 100; smith != want {
		t.Errorf("Smith weight = %v, want log2(0.9/0.01) = %v", smith, want)
	}
	if want := math.Round(math.Log2(0.9/1e-5)*100) / 100; okonkwo != want {
		t.Errorf("Okonkwo weight = %v, want the floored log2(0.9/1e-5) = %v", okonkwo, want)
	}
	if !(smith < unknown && unknown < okonkwo) {
		t.Errorf("weights Smith %v, unlisted %v, Okonkwo %v: want common < default < rare", smith, unknown, okonkwo)
	}
}

func TestScoreConfidence(t *testing.T) {
	m := DefaultModel()
	p := chartscan.Patient{MRN: "12345678", Family: "Doe", Given: "Jane", BirthDate: "1962-03-14"}
	w := func(mrn string, c float64) float64 {
		return m.Score(Evidence{MRN: Reading{mrn, c}}, p, nil).Evidence[0].Weight
	}
	if !(w("12345678", 1) > w("12345678", 0.5) && w("12345678", 0.5) > 0) {
		t.Errorf("agreement weights %v at 1, %v at 0.5: want lower but positive", w("12345678", 1), w("12345678", 0.5))
	}
	if !(w("99999999", 1) < w("99999999", 0.5) && w("99999999", 0.5) < 0) {
		t.Errorf("disagreement weights %v at 1, %v at 0.5: want less negative", w("99999999", 1), w("99999999", 0.5))
	}
	if got := w("99999999", 0); got != 0 {
		t.Errorf("weight at confidence 0 = %v, want 0", got)
	}
}

// An unsure birth date one digit off the record's is what a misread of the record's
// date looks like: it weighs more than a sure one (a real discrepancy), never more than
// an exact agreement read as surely, and other levels keep the plain interpolation.
func TestWeightOfAnUnsureNearDate(t *testing.T) {
	m := DefaultModel()
	w := func(level string, c float64) float64 { return m.Weight(FieldDOB, level, c, 0) }
	if !(w(LevelOneDigit, 0.5) > w(LevelOneDigit, 1)) {
		t.Errorf("one digit off: %v at confidence 0.5, %v at 1: want the unsure reading to weigh more", w(LevelOneDigit, 0.5), w(LevelOneDigit, 1))
	}
	for _, c := range []float64{0, 0.01, 0.05, 0.3, 0.55, 0.9, 1} {
		if near, exact := w(LevelOneDigit, c), w(LevelExact, c); near > exact {
			t.Errorf("confidence %v: one digit off weighs %v, exact %v", c, near, exact)
		}
	}
	if got := w(LevelDisagree, 0); got != 0 {
		t.Errorf("a disagreeing date at confidence 0 weighs %v, want 0", got)
	}
	// The plain interpolation for a level without a misread shape: c·m + (1−c)·u.
	p := m.Fields[FieldMRN][LevelOCRConfusable]
	want := math.Round(math.Log2((0.5*p.M+0.5*p.U)/p.U)*100) / 100
	if got := m.Weight(FieldMRN, LevelOCRConfusable, 0.5, 0); got != want {
		t.Errorf("MRN one confusion away at 0.5 weighs %v, want %v", got, want)
	}
}

func TestScoreEvidence(t *testing.T) {
	m := DefaultModel()
	p := chartscan.Patient{MRN: "12345678", Family: "Doe", Given: "Jane Marie", BirthDate: "1962-03-14", Sex: "female", Phone: "555 0100 123"}
	e := Evidence{MRN: Reading{"12345678", 1}, Family: Reading{"doe", 1}, Given: Reading{"jane", 1}, Phone: Reading{"5550100123", 1}}
	c := m.Score(e, p, nil)
	var fields, levels []string
	sum := 0.0
	for _, ev := range c.Evidence {
		fields, levels = append(fields, ev.Field), append(levels, ev.Level)
		sum += ev.Weight
	}
	if diff := cmp.Diff([]string{"mrn", "family", "given", "dob", "sex", "phone"}, fields); diff != "" {
		t.Errorf("evidence fields mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"exact", "exact", "exact", "missing", "missing", "exact"}, levels); diff != "" {
		t.Errorf("evidence levels mismatch (-want +got):\n%s", diff)
	}
	if math.Abs(sum-c.Score) > 0.01 {
		t.Errorf("Score %v is not the sum of its weights %v", c.Score, sum)
	}
}

// cand builds a candidate with the given score and field levels (field=level pairs).
func cand(mrn string, score float64, levels ...string) chartscan.Candidate {
	c := chartscan.Candidate{MRN: mrn, Score: score}
	for i := 0; i+1 < len(levels); i += 2 {
		c.Evidence = append(c.Evidence, chartscan.Evidence{Field: levels[i], Level: levels[i+1]})
	}
	return c
}

var (
	twinJane = chartscan.Patient{MRN: "10000001", Family: "Doe", Given: "Jane", BirthDate: "1990-05-01", Sex: "female"}
	twinMary = chartscan.Patient{MRN: "10000002", Family: "Doe", Given: "Mary", BirthDate: "1990-05-01", Sex: "female"}
	twinJan  = chartscan.Patient{MRN: "10000003", Family: "Doe", Given: "Janet", BirthDate: "1990-05-01", Sex: "female"}
)

func TestDecide(t *testing.T) {
	m := DefaultModel()
	page := func(mrn, family, given, dob string) Evidence {
		r := func(v string) Reading {
			if v == "" {
				return Reading{}
			}
			return Reading{v, 0.9}
		}
		return Evidence{MRN: r(mrn), Family: r(family), Given: r(given), DOB: r(dob), Sex: r("female")}
	}
	scored := func(e Evidence, ps ...chartscan.Patient) []chartscan.Candidate {
		return m.scoreAll(e, ps, nil)
	}
	exact := []string{FieldMRN, LevelExact, FieldFamily, LevelExact, FieldGiven, LevelExact, FieldDOB, LevelExact}
	luhnJane, luhnMary := twinJane, twinMary
	luhnJane.MRN, luhnMary.MRN = "79927398713", "49927398716"
	tests := []struct {
		name       string
		cands      []chartscan.Candidate
		wantStatus chartscan.PageStatus
		wantMRN    string
		wantReason string
	}{
		{"no candidates", nil, chartscan.StatusUnmatched, "", reasonNoCandidates},
		{"nothing plausible", []chartscan.Candidate{cand("1", 5)}, chartscan.StatusUnmatched, "", reasonImplausible},
		{"above threshold, clear lead", []chartscan.Candidate{cand("1", 50, exact...), cand("2", 20)}, chartscan.StatusAuto, "1", ""},
		{"below auto threshold", []chartscan.Candidate{cand("1", 20, exact...)}, chartscan.StatusReview, "1", reasonBelowAuto},
		{"within margin", []chartscan.Candidate{cand("2", 41), cand("1", 50, exact...)}, chartscan.StatusReview, "1", reasonClose},
		{"same MRN listed twice is one candidate", []chartscan.Candidate{cand("1", 50, exact...), cand("1", 50, exact...)}, chartscan.StatusAuto, "1", ""},
		{"mrn alone", scored(page("10000001", "", "", ""), twinJane), chartscan.StatusReview, "10000001", reasonBelowAuto},
		{"mrn and name", scored(page("10000001", "doe", "jane", ""), twinJane), chartscan.StatusAuto, "10000001", ""},
		{"mrn and dob", scored(page("10000001", "", "", "1990-05-01"), twinJane), chartscan.StatusAuto, "10000001", ""},
		{"dob disagrees, mrn and both names agree", scored(page("10000001", "doe", "jane", "1980-01-01"), twinJane), chartscan.StatusAuto, "10000001", ""},
		{"dob disagrees, mrn and family name agree", scored(page("10000001", "doe", "", "1980-01-01"), twinJane), chartscan.StatusReview, "10000001", reasonDOBDisagree},
		{"dob disagrees, names agree, no mrn", scored(page("", "doe", "jane", "1980-01-01"), twinJane), chartscan.StatusReview, "10000001", reasonDOBDisagree},
		{"given name disagrees", scored(page("10000001", "doe", "john", "1990-05-01"), twinJane), chartscan.StatusReview, "10000001", reasonNameDisagree},
		// Another surname under the same MRN, birth date and given name: a shared MRN,
		// two people, as AIRA's test set holds it (TestAIRA) — never a match on its own.
		{"family name differs, mrn, dob and given name agree", scored(page("10000001", "smith", "jane", "1990-05-01"), twinJane),
			chartscan.StatusReview, "10000001", reasonNameDisagree},
		{"family name changed, no mrn", scored(page("", "smith", "jane", "1990-05-01"), twinJane), chartscan.StatusReview, "10000001", reasonNameDisagree},
		{"family name changed, dob one digit off", scored(page("10000001", "smith", "jane", "1990-05-04"), twinJane),
			chartscan.StatusReview, "10000001", reasonNameDisagree},
		{"family name changed, given name only similar", scored(page("10000001", "smith", "joan", "1990-05-01"), twinJane),
			chartscan.StatusReview, "10000001", reasonNameDisagree},
		{"mrn disagrees, name and dob agree", scored(page("55555555", "doe", "jane", "1990-05-01"), twinJane),
			chartscan.StatusReview, "10000001", reasonMRNConflict},
		// Two identifiers are needed, whatever the score.
		{"mrn alone, scored high", []chartscan.Candidate{cand("1", 30, FieldMRN, LevelExact, FieldSex, LevelExact, FieldPhone, LevelExact)},
			chartscan.StatusReview, "1", reasonOneIdentifier},
		{"name alone, scored high", []chartscan.Candidate{cand("1", 30, FieldFamily, LevelExact, FieldGiven, LevelExact, FieldStreet, LevelExact)},
			chartscan.StatusReview, "1", reasonOneIdentifier},
		{"name and dob", []chartscan.Candidate{cand("1", 30, FieldFamily, LevelJW92, FieldGiven, LevelExact, FieldDOB, LevelExact)},
			chartscan.StatusAuto, "1", ""},
		{"mrn repaired and dob", []chartscan.Candidate{cand("1", 30, FieldMRN, LevelCheckDigitRepaired, FieldDOB, LevelExact)},
			chartscan.StatusAuto, "1", ""},
		{"mrn belongs to another candidate", []chartscan.Candidate{
			cand("1", 45, FieldMRN, LevelDisagree, FieldFamily, LevelExact, FieldGiven, LevelExact, FieldDOB, LevelExact),
			cand("2", 20, FieldMRN, LevelExact, FieldFamily, LevelDisagree)}, chartscan.StatusReview, "1", reasonMRNOther},
		// Twins: the MRN, the given name exactly and the other twin's disagreeing given
		// name all point to Jane.
		{"twins told apart", scored(page("10000001", "doe", "jane", "1990-05-01"), twinJane, twinMary),
			chartscan.StatusAuto, "10000001", ""},
		{"twins, no mrn on the page", scored(page("", "doe", "jane", "1990-05-01"), twinJane, twinMary),
			chartscan.StatusReview, "10000001", reasonTwins},
		{"twins, given name misread", scored(page("10000001", "doe", "jame", "1990-05-01"), twinJane, twinMary),
			chartscan.StatusReview, "10000001", reasonTwins},
		{"twins, mrn of one, given name of the other", scored(page("10000001", "doe", "mary", "1990-05-01"), twinJane, twinMary),
			chartscan.StatusReview, "10000001", reasonTwins},
		{"twins, mrn one confusion away", scored(page("1000000L", "doe", "jane", "1990-05-01"), twinJane, twinMary),
			chartscan.StatusReview, "10000001", reasonTwins},
		// An MRN one confusion off that fails its check digit, whose one repair is Jane's,
		// points at Jane as surely as an exact reading (Luhn MRNs here).
		{"twins, mrn repaired by its check digit", scored(page("79927390713", "doe", "jane", "1990-05-01"), luhnJane, luhnMary),
			chartscan.StatusAuto, "79927398713", ""},
		{"twins, mrn repaired by its check digit, given name misread", scored(page("79927390713", "doe", "jame", "1990-05-01"), luhnJane, luhnMary),
			chartscan.StatusReview, "79927398713", reasonTwins},
		// Near-twins: Jane and Janet differ by one letter, so the MRN alone would decide.
		{"near-twins", scored(page("10000001", "doe", "jane", "1990-05-01"), twinJane, twinJan),
			chartscan.StatusReview, "10000001", reasonTwins},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := m.Decide(tt.cands)
			got := brief{f.Status, f.MRN, f.Reason}
			if diff := cmp.Diff(brief{tt.wantStatus, tt.wantMRN, tt.wantReason}, got); diff != "" {
				t.Errorf("Decide mismatch (-want +got):\n%s\ncandidates: %+v", diff, f.Candidates)
			}
			if len(f.Candidates) > maxCandidates {
				t.Errorf("Decide listed %d candidates, want at most %d", len(f.Candidates), maxCandidates)
			}
		})
	}
}

func TestDecideRanksAtMostFive(t *testing.T) {
	var cands []chartscan.Candidate
	for i := range 8 {
		cands = append(cands, cand(fmt.Sprintf("M%d", i), float64(10+i)))
	}
	f := DefaultModel().Decide(cands)
	var mrns []string
	for _, c := range f.Candidates {
		mrns = append(mrns, c.MRN)
	}
	if diff := cmp.Diff([]string{"M7", "M6", "M5", "M4", "M3"}, mrns); diff != "" {
		t.Errorf("candidates mismatch (-want +got):\n%s", diff)
	}
}

func TestEvidenceFrom(t *testing.T) {
	got := EvidenceFrom(append(ids("00-123-456", "NÚÑEZ, José", "03/14/1962"),
		chartscan.Identifier{Kind: chartscan.KindSex, Value: "F", Confidence: 0.8},
		chartscan.Identifier{Kind: chartscan.KindMRN, Value: "777", Confidence: 0.5}))
	want := Evidence{MRN: Reading{"00123456", 0.45}, Family: Reading{"nunez", 0.9}, Given: Reading{"jose", 0.9},
		DOB: Reading{"1962-03-14", 0.9}, Sex: Reading{"female", 0.8}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EvidenceFrom mismatch (-want +got):\n%s", diff)
	}
}

// TestEstimateU draws a synthetic EMPI with known chance agreement: 50 surnames, 20
// given names, 1000 birth dates, two sexes, all uniform.
func mustDate(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestEstimateU(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var sample []chartscan.Patient
	base := mustDate("1950-01-01")
	for i := range 5000 {
		sample = append(sample, chartscan.Patient{
			MRN:       fmt.Sprint(1000000 + i),
			Family:    fmt.Sprintf("Fam%cx%c", 'a'+rng.IntN(10), 'a'+rng.IntN(5)),
			Given:     fmt.Sprintf("G%cq%c", 'a'+rng.IntN(4), 'a'+rng.IntN(5)),
			BirthDate: base.AddDate(0, 0, rng.IntN(1000)*30).Format("2006-01-02"),
			Sex:       []string{"male", "female"}[rng.IntN(2)],
		})
	}
	d := DefaultModel()
	m := d.EstimateU(sample, 100000, 7)
	checks := []struct {
		field, level string
		want, tol    float64
	}{
		{FieldFamily, LevelExact, 1.0 / 50, 0.003},
		{FieldGiven, LevelExact, 1.0 / 20, 0.004},
		{FieldDOB, LevelExact, 1.0 / 1000, 0.0004},
		{FieldSex, LevelExact, 0.5, 0.01},
		{FieldMRN, LevelExact, 1e-6, 1e-12}, // unique keys keep their combinatorial u
	}
	for _, c := range checks {
		if got := m.Fields[c.field][c.level].U; math.Abs(got-c.want) > c.tol {
			t.Errorf("u[%s][%s] = %.5f, want %.5f ± %.5f", c.field, c.level, got, c.want, c.tol)
		}
	}
	if d.Fields[FieldFamily][LevelExact].U != 1.0/500 {
		t.Errorf("EstimateU changed the model it started from")
	}
}

// TestEstimateM fits m by EM to comparison vectors drawn from known m, u and match share.
func TestEstimateM(t *testing.T) {
	truth := map[string][]struct {
		level string
		m, u  float64
	}{
		FieldFamily: {{LevelExact, 0.85, 0.01}, {LevelJW92, 0.10, 0.04}, {LevelDisagree, 0.05, 0.95}},
		FieldGiven:  {{LevelExact, 0.80, 0.02}, {LevelInitial, 0.10, 0.05}, {LevelDisagree, 0.10, 0.93}},
		FieldDOB:    {{LevelExact, 0.90, 0.001}, {LevelOneDigit, 0.06, 0.02}, {LevelDisagree, 0.04, 0.979}},
		FieldSex:    {{LevelExact, 0.97, 0.5}, {LevelDisagree, 0.03, 0.5}},
	}
	const share = 0.3
	rng := rand.New(rand.NewPCG(3, 4))
	draw := func(field string, match bool) string {
		x := rng.Float64()
		for _, l := range truth[field] {
			p := l.u
			if match {
				p = l.m
			}
			if x < p {
				return l.level
			}
			x -= p
		}
		return LevelDisagree
	}
	start := DefaultModel()
	for field, levels := range truth {
		start.Fields[field] = map[string]Probs{}
		for _, l := range fieldLevels[field] {
			start.Fields[field][l] = Probs{M: 0.5 / float64(len(fieldLevels[field])), U: 1e-4}
		}
		for _, l := range levels {
			start.Fields[field][l.level] = Probs{M: 1.0 / float64(len(levels)), U: l.u}
		}
	}
	var vectors []Vector
	for range 20000 {
		match := rng.Float64() < share
		v := Vector{}
		for field := range truth {
			v[field] = draw(field, match)
		}
		vectors = append(vectors, v)
	}
	got, lambda := start.EstimateM(vectors, 50)
	if math.Abs(lambda-share) > 0.02 {
		t.Errorf("match share = %.3f, want %.3f", lambda, share)
	}
	for field, levels := range truth {
		for _, l := range levels {
			if g := got.Fields[field][l.level].M; math.Abs(g-l.m) > 0.03 {
				t.Errorf("m[%s][%s] = %.3f, want %.3f", field, l.level, g, l.m)
			}
		}
	}
}
